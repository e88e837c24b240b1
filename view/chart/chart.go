// Package chart draws zen's plots (zen.Plot: metrics across runs or model
// versions, a run's plot outputs) as SVG or PNG images, with gonum/plot:
// a line per series, a legend, the x axis labelled with runs or versions
// where it counts them. zen plots writes them to files; a pull-request
// comment or a web page embeds DrawSVG's bytes, or DataURI's.
package chart

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/zen-dev/zen"
)

// Format is an image format Draw writes.
type Format string

// The formats.
const (
	SVG Format = "svg"
	PNG Format = "png"
)

// Formats are the formats Draw writes, as file extensions take them.
var Formats = []Format{SVG, PNG}

// FormatOf reads the format a file name's extension asks for: .svg or
// .png, in any case.
func FormatOf(path string) (Format, error) {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	f := Format(ext)
	if f != SVG && f != PNG {
		if ext == "" {
			return "", fmt.Errorf("%s has no extension: end it with .svg or .png", path)
		}
		return "", fmt.Errorf("%s: zen draws .svg or .png, not .%s", path, ext)
	}
	return f, nil
}

// ParseFormat reads a format's name: svg or png.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(s))
	if f != SVG && f != PNG {
		return "", fmt.Errorf("format %q: want svg or png", s)
	}
	return f, nil
}

// Size is an image's size in pixels: a PNG's, and an SVG's in CSS pixels
// (96 to the inch, as the PNG is drawn).
type Size struct{ Width, Height int }

// DefaultSize fits a pull-request comment or a page's column.
var DefaultSize = Size{Width: 800, Height: 500}

// The smallest and largest sizes Draw takes: below, the axes leave no
// room for the lines; above, a PNG takes hundreds of megabytes.
const (
	MinSide = 100
	MaxSide = 8000
)

// dpi is the PNG's resolution, and the pixel an SVG is measured in.
const dpi = 96

// Draw draws p in format f at size s.
func Draw(p *zen.Plot, f Format, s Size) ([]byte, error) {
	if s.Width < MinSide || s.Height < MinSide || s.Width > MaxSide || s.Height > MaxSide {
		return nil, fmt.Errorf("size %dx%d: want each side from %d to %d pixels", s.Width, s.Height, MinSide, MaxSide)
	}
	pl, err := build(p)
	if err != nil {
		return nil, err
	}
	w, h := vg.Length(s.Width)*vg.Inch/dpi, vg.Length(s.Height)*vg.Inch/dpi
	var c vg.CanvasWriterTo
	switch f {
	case SVG:
		c = vgsvg.NewWith(vgsvg.UseWH(w, h))
	case PNG:
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))}
	default:
		return nil, fmt.Errorf("format %q: want svg or png", f)
	}
	// A margin, so that the title and the legend do not touch the edge.
	m := vg.Points(8)
	pl.Draw(draw.Crop(draw.New(c), m, -m, m/2, -m))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("draw %s as %s: %w", p.Name, f, err)
	}
	return buf.Bytes(), nil
}

// DrawSVG draws p as SVG at the default size: what a pull-request comment
// or a web page embeds.
func DrawSVG(p *zen.Plot) ([]byte, error) { return Draw(p, SVG, DefaultSize) }

// DataURI is p drawn as SVG at the default size, as a data: URI for an
// <img src> or a Markdown image.
func DataURI(p *zen.Plot) (string, error) {
	b, err := DrawSVG(p)
	if err != nil {
		return "", err
	}
	return "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(b), nil
}

// maxTickLabels is the most labels the x axis shows where it counts runs
// or versions; the other ticks are left unlabelled.
const maxTickLabels = 12

// build makes p's gonum plot: a line with points per series, in the
// series' order, colours and dashes from plotutil's palettes.
func build(p *zen.Plot) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.X.Label.Text = p.XLabel
	pl.Y.Label.Text = p.YLabel
	for _, st := range []*font.Font{&pl.Title.TextStyle.Font, &pl.X.Label.TextStyle.Font, &pl.Y.Label.TextStyle.Font,
		&pl.X.Tick.Label.Font, &pl.Y.Tick.Label.Font, &pl.Legend.TextStyle.Font} {
		st.Variant = "Sans"
	}
	pl.Legend.Top = true
	pl.Legend.XOffs = -vg.Points(4)
	pl.Title.Padding = vg.Points(6)
	pl.Add(plotter.NewGrid())
	var lines []any
	for _, s := range p.Series {
		if len(s.Points) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(s.Points))
		for i, pt := range s.Points {
			xys[i] = plotter.XY{X: pt.X, Y: pt.Y}
		}
		lines = append(lines, s.Name, xys)
	}
	if err := plotutil.AddLinePoints(pl, lines...); err != nil {
		return nil, fmt.Errorf("draw %s: %w", p.Name, err)
	}
	if n := len(lines) / 2; n > 0 {
		// Room above the data for the legend, a line per series.
		if pl.Y.Min == pl.Y.Max {
			// One value: centred, as gonum centres it.
			pl.Y.Min, pl.Y.Max = pl.Y.Min-1, pl.Y.Max+1
		}
		pl.Y.Max += (pl.Y.Max - pl.Y.Min) * 0.07 * float64(n)
	}
	if len(p.Ticks) > 0 {
		every := (len(p.Ticks) + maxTickLabels - 1) / maxTickLabels
		ticks := make(plot.ConstantTicks, len(p.Ticks))
		for i, t := range p.Ticks {
			ticks[i] = plot.Tick{Value: t.X}
			if i%every == 0 {
				ticks[i].Label = t.Label
			}
		}
		pl.X.Tick.Marker = ticks
		// Room for the first and last points beside the axis' ends.
		pl.X.Min, pl.X.Max = p.Ticks[0].X-0.5, p.Ticks[len(p.Ticks)-1].X+0.5
	}
	return pl, nil
}
