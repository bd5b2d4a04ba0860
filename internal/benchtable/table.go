package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The two libraries' sub-benchmarks are named so in bench_test.go.
const (
	ours   = "oauth2refresh"
	theirs = "x-oauth2"
)

// results maps "Family/sub" to unit to the values measured (one per -count).
type results map[string]map[string][]float64

// parse reads `go test -bench` output. A result line is the benchmark name (with a -GOMAXPROCS
// suffix), the iteration count, then value-unit pairs.
func parse(r io.Reader) results {
	res := results{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if res[name] == nil {
				res[name] = map[string][]float64{}
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// target is what the issue asks of one metric.
type target struct {
	family, unit string
	// check says whether the target is met, given our value and x/oauth2's.
	check func(ours, theirs float64) bool
	text  string
}

var targets = []target{
	{"HotPath", "ns/op", func(o, t float64) bool { return o*2 <= t }, "≥2x faster"},
	{"HotPath", "allocs/op", func(o, t float64) bool { return o == 0 }, "0 allocs"},
	{"Refresh", "allocs/op", func(o, t float64) bool { return o <= t }, "≤1x allocs"},
	{"Refresh", "ns/op", func(o, t float64) bool { return o <= t }, "≤1x time"},
	{"WorstWait", "worst-ms", func(o, t float64) bool { return o*50 <= t }, "≥50x shorter"},
	{"FailureStorm", "requests/op", func(o, t float64) bool { return o <= 2 }, "≤2 requests"},
}

// order lists the metrics shown per family, in order.
var order = map[string][]string{
	"HotPath":      {"ns/op", "allocs/op", "B/op"},
	"Refresh":      {"allocs/op", "B/op", "ns/op"},
	"WorstWait":    {"worst-ms", "p99.9-ms", "refreshes/op"},
	"FailureStorm": {"requests/op", "ns/op", "allocs/op"},
}

// table formats res as Markdown: one row per family and metric, with x/oauth2's value where
// there is one, the ratio ours/theirs, and the target.
func table(res results) string {
	var families []string
	for name := range res {
		fam, _, _ := strings.Cut(name, "/")
		if !slices.Contains(families, fam) {
			families = append(families, fam)
		}
	}
	rank := func(f string) int {
		for i, k := range []string{"HotPath", "Refresh", "WorstWait", "FailureStorm"} {
			if f == k {
				return i
			}
		}
		return 100
	}
	slices.SortFunc(families, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})

	var b strings.Builder
	b.WriteString("| benchmark | metric | oauth2refresh | x/oauth2 | ratio | target |\n")
	b.WriteString("|---|---|---:|---:|---:|---|\n")
	for _, fam := range families {
		units := order[fam]
		if units == nil {
			for u := range res[fam+"/"+ours] {
				units = append(units, u)
			}
			slices.Sort(units)
		}
		// Sub-benchmarks other than the two compared (e.g. Refresh/oauth2refresh-Endpoint.Refresh).
		var extras []string
		for name := range res {
			if f, sub, _ := strings.Cut(name, "/"); f == fam && sub != ours && sub != theirs {
				extras = append(extras, sub)
			}
		}
		slices.Sort(extras)
		for _, u := range units {
			o, okO := res[fam+"/"+ours][u]
			t, okT := res[fam+"/"+theirs][u]
			if !okO && !okT {
				continue
			}
			row := []string{fam, u, "", "", "", ""}
			if okO {
				row[2] = format(median(o))
			}
			if okT {
				row[3] = format(median(t))
			}
			if okO && okT {
				row[4] = ratio(median(o), median(t))
				for _, tg := range targets {
					if tg.family == fam && tg.unit == u {
						verdict := "met"
						if !tg.check(median(o), median(t)) {
							verdict = "NOT met"
						}
						row[5] = tg.text + ": " + verdict
					}
				}
			}
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
			for _, sub := range extras {
				if e, ok := res[fam+"/"+sub][u]; ok {
					r := []string{fam + " (" + strings.TrimPrefix(sub, ours+"-") + ")", u, format(median(e)), "", "", ""}
					if okT {
						r[4] = ratio(median(e), median(t))
					}
					b.WriteString("| " + strings.Join(r, " | ") + " |\n")
				}
			}
		}
	}
	b.WriteString("\nratio = oauth2refresh / x/oauth2: lower is better, except refreshes/op, which only shows\n" +
		"that both sources refreshed during the WorstWait run (oauth2refresh ahead of time).\n")
	return b.String()
}

func ratio(o, t float64) string {
	switch {
	case t == 0 && o == 0:
		return "="
	case t == 0:
		return "∞"
	}
	r := o / t
	if r < 1 {
		inv := strconv.FormatFloat(1/r, 'g', 3, 64)
		if 1/r >= 100 {
			inv = strconv.FormatFloat(1/r, 'f', 0, 64)
		}
		return fmt.Sprintf("%.2gx (1/%s)", r, inv)
	}
	return fmt.Sprintf("%.3gx", r)
}

func format(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
