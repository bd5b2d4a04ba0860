package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `goos: linux
BenchmarkHotPath/oauth2refresh-2   	43673622	        20.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkHotPath/oauth2refresh-2   	43673622	        30.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkHotPath/x-oauth2-2        	12317054	       100.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkFailureStorm/oauth2refresh-2 	   12385	     28249 ns/op	         1.000 requests/op	    5134 B/op	      93 allocs/op
BenchmarkFailureStorm/x-oauth2-2      	    1106	    373385 ns/op	        20.00 requests/op	   82075 B/op	     946 allocs/op
PASS
`

func TestParse(t *testing.T) {
	got := parse(strings.NewReader(sample))
	want := results{
		"HotPath/oauth2refresh":      {"ns/op": {20, 30}, "B/op": {0, 0}, "allocs/op": {0, 0}},
		"HotPath/x-oauth2":           {"ns/op": {100}, "B/op": {0}, "allocs/op": {0}},
		"FailureStorm/oauth2refresh": {"ns/op": {28249}, "requests/op": {1}, "B/op": {5134}, "allocs/op": {93}},
		"FailureStorm/x-oauth2":      {"ns/op": {373385}, "requests/op": {20}, "B/op": {82075}, "allocs/op": {946}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parse() mismatch (-want +got):\n%s", diff)
	}
}

func TestTable(t *testing.T) {
	got := table(parse(strings.NewReader(sample)))
	for _, want := range []string{
		"| HotPath | ns/op | 25 | 100 | 0.25x (1/4) | ≥2x faster: met |",
		"| HotPath | allocs/op | 0 | 0 | = | 0 allocs: met |",
		"| FailureStorm | requests/op | 1 | 20 | 0.05x (1/20) | ≤2 requests: met |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}
