// Command benchtable runs the benchmarks of bench_test.go, which measure oauth2refresh and
// golang.org/x/oauth2 side by side in one process, and prints them as a Markdown table with
// the ratio of each metric and the target it is held to. From anywhere in the module:
//
//	go run ./internal/benchtable                  # about a minute on 2 cores
//	go run ./internal/benchtable -count 3         # medians of 3 runs
//	go test -run '^$' -bench . -benchmem . | go run ./internal/benchtable -in -
//
// It runs `go test -run '^$' -bench <pattern> -benchmem -benchtime <d> -count <n>` in the
// module root, unless -in names saved `go test -bench` output ("-" for standard input).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("benchtable: ")
	in := flag.String("in", "", "read `go test -bench` output from this file (- for stdin) instead of running the benchmarks")
	bench := flag.String("bench", "^Benchmark(HotPath|Refresh|WorstWait|FailureStorm)$", "benchmarks to run")
	benchtime := flag.String("benchtime", "1s", "go test -benchtime")
	count := flag.Int("count", 1, "go test -count; the table shows medians")
	flag.Parse()

	var out []byte
	var err error
	switch *in {
	case "":
		out, err = run(*bench, *benchtime, *count)
	case "-":
		out, err = io.ReadAll(os.Stdin)
	default:
		out, err = os.ReadFile(*in)
	}
	if err != nil {
		log.Fatal(err)
	}
	res := parse(bytes.NewReader(out))
	if len(res) == 0 {
		log.Fatalf("no benchmark results in:\n%s", out)
	}
	fmt.Print(header(out))
	fmt.Print(table(res))
}

// run runs the benchmarks in the module root and returns their output.
func run(bench, benchtime string, count int) ([]byte, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", bench, "-benchmem",
		"-benchtime", benchtime, "-count", fmt.Sprint(count), ".")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	fmt.Fprintf(os.Stderr, "benchtable: running %s in %s\n", strings.Join(cmd.Args, " "), root)
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return out, nil
}

// header returns the goos/goarch/cpu lines of the output, for the record.
func header(out []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "goos:") || strings.HasPrefix(line, "goarch:") || strings.HasPrefix(line, "cpu:") {
			b.WriteString(line + "\n")
		}
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}
