package storm

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/slipway/slipway/testbed"
)

// sample is the storm at one moment.
type sample struct {
	At           time.Duration
	ServerCores  float64 // CPU the server used over the last second, in cores
	ServerRSSMiB float64
	StormCores   float64 // CPU the storm itself used: the simulated machines share the box
	PoweredOn    int64
	Done         [numStages]int64 // machines past each stage (Done[stageHeartbeats]: ready)
	Failed       int64
	MQTT, Stream int64
	Browser      int64 // live events the console's page handled so far
}

// minRateSpan is the shortest span a rate is taken over: the last sample
// comes a moment after the one before, and over that moment CPU time (in
// 10 ms clock ticks) once read as a thousand cores, and a burst of events
// as a rate the page never kept up. A shorter span keeps the rate before.
const minRateSpan = time.Second / 2

// sample takes a sample every second until ctx ends, then hands over the
// series (and once more at the end, so the last second is in it).
func (s *storm) sample(ctx context.Context) <-chan []sample {
	out := make(chan []sample, 1)
	go func() {
		var series []sample
		lastCPU, lastOwn, lastAt := s.serverCPU(), ownCPU(), time.Now()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			stopping := false
			select {
			case <-ctx.Done():
				stopping = true
			case <-tick.C:
			}
			cpu, own, now := s.serverCPU(), ownCPU(), time.Now()
			x := sample{At: now.Sub(s.began), PoweredOn: s.progress.poweredOn.Load(), Failed: s.progress.failed.Load(),
				MQTT: s.progress.mqtt.Load(), Stream: s.progress.stream.Load()}
			if len(series) > 0 {
				x.ServerCores, x.StormCores = series[len(series)-1].ServerCores, series[len(series)-1].StormCores
			}
			if span := now.Sub(lastAt); span >= minRateSpan || len(series) == 0 {
				x.ServerCores, x.StormCores = (cpu-lastCPU).Seconds()/span.Seconds(), (own-lastOwn).Seconds()/span.Seconds()
			}
			if s.console != nil {
				x.Browser = s.console.events.Load()
			}
			lastCPU, lastOwn, lastAt = cpu, own, now
			for st := range x.Done {
				x.Done[st] = s.progress.done[st].Load()
			}
			if s.cfg.ServerPID != 0 {
				if kib, err := testbed.ResidentKiB(s.cfg.ServerPID); err == nil {
					x.ServerRSSMiB = float64(kib) / 1024
				}
			}
			series = append(series, x)
			if s.cfg.Progress != nil && (len(series)%5 == 0 || stopping) {
				fmt.Fprintln(s.cfg.Progress, x.line())
			}
			if stopping {
				out <- series
				return
			}
		}
	}()
	return out
}

// perSecond is a counter's rate between consecutive samples (0 for the
// first; the one before for a span shorter than minRateSpan).
func perSecond(series []sample, count func(sample) int64) []float64 {
	rates := make([]float64, len(series))
	for i := 1; i < len(series); i++ {
		if span := series[i].At - series[i-1].At; span >= minRateSpan {
			rates[i] = float64(count(series[i])-count(series[i-1])) / span.Seconds()
		} else {
			rates[i] = rates[i-1]
		}
	}
	return rates
}

func (s *storm) serverCPU() time.Duration {
	if s.cfg.ServerPID == 0 {
		return 0
	}
	d, _ := testbed.CPUTime(s.cfg.ServerPID)
	return d
}

func ownCPU() time.Duration {
	d, _ := testbed.CPUTime(os.Getpid())
	return d
}

func (x sample) line() string {
	return fmt.Sprintf("%5.0fs  on %6d  leased %6d  loader %6d  kernel %6d  ready %6d  failed %4d  | server %.2f cores %4.0f MiB, storm %.2f cores | mqtt %d, stream %d",
		x.At.Seconds(), x.PoweredOn, x.Done[stageFirmwareDHCP], x.Done[stageLoader], x.Done[stageKernel], x.Done[stageHeartbeats], x.Failed,
		x.ServerCores, x.ServerRSSMiB, x.StormCores, x.MQTT, x.Stream)
}
