package storm

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// A chart is drawn in plain SVG: three panels over the storm's seconds
// (machines by stage, the server's CPU, its resident memory), with no
// library and nothing fetched to show it.
const (
	chartWidth  = 760
	panelHeight = 200
	marginLeft  = 64
	marginRight = 170 // the legend
	marginTop   = 28
	panelGap    = 56
)

type plotLine struct {
	name, color string
	ys          []float64
}

// panel is one chart of the plot: a title and its lines.
type panel struct {
	title string
	lines []plotLine
}

func (r *Report) svg() string {
	xs := make([]float64, len(r.series))
	for i, x := range r.series {
		xs[i] = x.At.Seconds()
	}
	pick := func(f func(sample) float64) []float64 {
		ys := make([]float64, len(r.series))
		for i, x := range r.series {
			ys[i] = f(x)
		}
		return ys
	}
	done := func(st stage) []float64 { return pick(func(x sample) float64 { return float64(x.Done[st]) }) }
	panels := []panel{
		{fmt.Sprintf("%d machines: how many are past each stage", r.Machines), []plotLine{
			{"powered on", "#9e9e9e", pick(func(x sample) float64 { return float64(x.PoweredOn) })},
			{"leased", "#1f77b4", done(stageFirmwareDHCP)},
			{"loader fetched", "#17becf", done(stageLoader)},
			{"kernel fetched", "#ff7f0e", done(stageKernel)},
			{"ready", "#2ca02c", done(stageHeartbeats)},
			{"failed", "#d62728", pick(func(x sample) float64 { return float64(x.Failed) })},
		}},
		{"CPU (cores, per second) of Slipway and of the storm itself", []plotLine{
			{"Slipway", "#9467bd", pick(func(x sample) float64 { return x.ServerCores })},
			{"the storm", "#bcbd22", pick(func(x sample) float64 { return x.StormCores })},
		}},
		{"Slipway's resident memory (MiB)", []plotLine{{"RSS", "#8c564b", pick(func(x sample) float64 { return x.ServerRSSMiB })}}},
	}
	if r.Console != nil {
		panels = append(panels, panel{"Live events per second: to the MQTT subscriber, and handled by the console in Chromium", []plotLine{
			{"MQTT subscriber", "#1f77b4", perSecond(r.series, func(x sample) int64 { return x.MQTT })},
			{"console (Chromium)", "#e377c2", perSecond(r.series, func(x sample) int64 { return x.Browser })},
		}})
	}
	height := len(panels)*(panelHeight+panelGap) + marginTop
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	for i, p := range panels {
		drawPanel(&b, marginTop+i*(panelHeight+panelGap), p.title, xs, p.lines)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func drawPanel(b *strings.Builder, top int, title string, xs []float64, lines []plotLine) {
	plotW := float64(chartWidth - marginLeft - marginRight)
	xMax, yMax := niceCeil(last(xs)), 0.0
	for _, l := range lines {
		for _, y := range l.ys {
			yMax = math.Max(yMax, y)
		}
	}
	yMax = niceCeil(yMax)
	x := func(v float64) float64 { return marginLeft + v/xMax*plotW }
	y := func(v float64) float64 { return float64(top+panelHeight) - v/yMax*panelHeight }
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", marginLeft, top-10, html.EscapeString(title))
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		fmt.Fprintf(b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/>`, marginLeft, x(xMax), y(v), y(v))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", marginLeft-6, y(v)+4, tick(v))
	}
	for i := 0; i <= 6; i++ {
		v := xMax * float64(i) / 6
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#444">%ss</text>`+"\n", x(v), top+panelHeight+16, tick(v))
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#888"/>`+"\n", marginLeft, top, plotW, panelHeight)
	for i, l := range lines {
		var pts strings.Builder
		for j, v := range l.ys {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(xs[j]), y(v))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", l.color, strings.TrimSpace(pts.String()))
		ly := top + 12 + i*18
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%d" y2="%d" stroke="%s" stroke-width="3"/><text x="%.0f" y="%d">%s</text>`+"\n",
			x(xMax)+12, x(xMax)+32, ly, ly, l.color, x(xMax)+38, ly+4, html.EscapeString(l.name))
	}
}

func last(xs []float64) float64 {
	if len(xs) == 0 {
		return 1
	}
	return xs[len(xs)-1]
}

// niceCeil rounds v up to 1, 1.2, 2, 2.4, 3 or 6 times a power of ten,
// whose quarters and sixths (the ticks) are readable numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 2, 2.4, 3, 6, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func tick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
