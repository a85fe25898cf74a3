package main

import (
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/tools/loadgen"
)

// The results table for the target sets trackerbench accepts: seedbank
// alone, with opentracker, and with a second seedbank build (the last
// once panicked on the opentracker ratio of phases that were never run).
func TestWriteTable(t *testing.T) {
	measured := func(ok int64, cpu time.Duration) phase {
		return phase{res: &loadgen.Result{Mode: loadgen.UDP, OK: ok, Elapsed: time.Second}, cpu: cpu, gen: time.Second / 2}
	}
	phasesOf := func(cpuPerAnn map[string][]time.Duration) map[key]phase {
		ps := map[key]phase{}
		for name, per := range cpuPerAnn {
			for r, c := range per {
				ps[key{name, "udp", "peak", r}] = measured(1000, 1000*c)
				ps[key{name, "udp", "half", r}] = measured(500, 500*c)
			}
		}
		return ps
	}
	for _, tc := range []struct {
		name   string
		names  []string
		rounds int
		cpu    map[string][]time.Duration // per round, per announce
		want   []string
	}{
		{"seedbank alone", []string{"seedbank"}, 1,
			map[string][]time.Duration{"seedbank": {6 * time.Microsecond}},
			[]string{"| udp | seedbank | 1000 | 6.0 |  | "}},
		{"against opentracker, three rounds", []string{"seedbank", "opentracker"}, 3,
			map[string][]time.Duration{
				"seedbank":    {6 * time.Microsecond, 7 * time.Microsecond, 5 * time.Microsecond},
				"opentracker": {6 * time.Microsecond, 5 * time.Microsecond, 5 * time.Microsecond}},
			[]string{"| udp | seedbank | 1000 | 6.0 | **1.00** |", "| udp | opentracker | 1000 | 5.0 |  |",
				"CPU ratio at peak in each round 1.00, 1.40, 1.00"}},
		{"A/B of two builds", []string{"seedbank", "seedbank@/tmp/other"}, 2,
			map[string][]time.Duration{
				"seedbank":            {6 * time.Microsecond, 6 * time.Microsecond},
				"seedbank@/tmp/other": {8 * time.Microsecond, 4 * time.Microsecond}},
			[]string{"| udp | seedbank@/tmp/other | 1000 | 6.0 |", "seedbank / seedbank@/tmp/other: median 1.125 (rounds 0.750, 1.500)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeTable(&b, tc.names, []string{"udp"}, tc.rounds, phasesOf(tc.cpu))
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("table lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}
