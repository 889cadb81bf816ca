package loadgen

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
)

// Comparison is what Compare measured: each server's runs merged over the
// rounds, saturating and then paced at half the target's saturating
// throughput.
type Comparison struct {
	Rounds int `json:"rounds"`
	// Base and Target are the saturating runs, merged.
	Base   Result `json:"base"`
	Target Result `json:"target"`
	// Ratio is Target's throughput over Base's; RoundRatios the same per
	// round, to show the noise.
	Ratio       float64   `json:"throughput_ratio"`
	RoundRatios []float64 `json:"round_ratios"`
	// HalfRate is the pace of the second phase: half of Target's
	// saturating throughput, offered to both servers.
	HalfRate   float64 `json:"half_rate"`
	BaseHalf   Result  `json:"base_half_rate"`
	TargetHalf Result  `json:"target_half_rate"`
	// P99Ratio is Target's p99 over Base's at the half rate.
	P99Ratio float64 `json:"half_rate_p99_ratio"`
}

// Compare runs load (its Conns ignored) against base and target in
// alternating runs: rounds saturating runs each, then rounds runs each at
// half of target's saturating throughput. The order within a round
// alternates too, so that drift in the machine's load spreads evenly.
func Compare(ctx context.Context, load Config, rounds int, base, target []*grpc.ClientConn) (Comparison, error) {
	c := Comparison{Rounds: rounds}
	phase := func(rate float64, b, t *Result, each func(b, t Result)) error {
		for i := range rounds {
			order := []bool{false, true} // false: base
			if i%2 == 1 {
				order = []bool{true, false}
			}
			var rb, rt Result
			for _, isTarget := range order {
				cfg := load
				cfg.Rate = rate
				cfg.Conns = base
				if isTarget {
					cfg.Conns = target
				}
				r, err := Run(ctx, cfg)
				if err != nil {
					return err
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if isTarget {
					rt = r
				} else {
					rb = r
				}
			}
			b.add(rb)
			t.add(rt)
			if each != nil {
				each(rb, rt)
			}
		}
		return nil
	}
	if err := phase(0, &c.Base, &c.Target, func(b, t Result) {
		c.RoundRatios = append(c.RoundRatios, ratio(t.PerSecond, b.PerSecond))
	}); err != nil {
		return c, err
	}
	c.Ratio = ratio(c.Target.PerSecond, c.Base.PerSecond)
	if c.Target.PerSecond == 0 {
		return c, fmt.Errorf("the target answered no Check: %s", c.Target.FirstError)
	}
	c.HalfRate = c.Target.PerSecond / 2
	if err := phase(c.HalfRate, &c.BaseHalf, &c.TargetHalf, nil); err != nil {
		return c, err
	}
	c.P99Ratio = ratio(c.TargetHalf.P99Micros, c.BaseHalf.P99Micros)
	return c, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
