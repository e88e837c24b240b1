package chart

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"strings"
	"testing"

	"github.com/zen-dev/zen"
)

// runsPlot is a metrics plot across four runs, one missing a metric.
func runsPlot() *zen.Plot {
	return &zen.Plot{
		Name: "demo", Title: "pipeline demo", XLabel: "run of demo (oldest first)", YLabel: "value",
		Ticks: []zen.Tick{{X: 1, Label: "1"}, {X: 2, Label: "2"}, {X: 3, Label: "3"}, {X: 4, Label: "4"}},
		Series: []zen.Series{
			{Name: "train.accuracy", Points: []zen.Point{{X: 1, Y: 0.9}, {X: 2, Y: 0.75}, {X: 3, Y: 0.8}, {X: 4, Y: 0.95}}},
			{Name: "train.momentum", Points: []zen.Point{{X: 2, Y: 0.9}, {X: 4, Y: 0.5}}},
		},
	}
}

// svgText parses b as XML and returns the text of its <text> elements.
func svgText(t *testing.T, b []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var texts []string
	var in bool
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			in = tok.Name.Local == "text"
		case xml.CharData:
			if in {
				texts = append(texts, string(tok))
			}
		case xml.EndElement:
			in = false
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return texts
}

func TestDrawSVG(t *testing.T) {
	b, err := Draw(runsPlot(), SVG, Size{Width: 640, Height: 400})
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Join(svgText(t, b), "\n")
	for _, want := range []string{"pipeline demo", "train.accuracy", "train.momentum", "run of demo (oldest first)", "value"} {
		if !strings.Contains(texts, want) {
			t.Errorf("the SVG's text lacks %q:\n%s", want, texts)
		}
	}
	// 640x400 CSS pixels are 480x300 points.
	if !bytes.Contains(b, []byte(`width="480pt" height="300pt"`)) {
		t.Errorf("the SVG's size is not 480x300pt: %.300s", b)
	}
	// Drawing is deterministic: a comment embeds the same bytes each time.
	again, err := Draw(runsPlot(), SVG, Size{Width: 640, Height: 400})
	if err != nil || !bytes.Equal(b, again) {
		t.Errorf("drawing twice made different SVGs (err %v)", err)
	}
}

func TestDrawPNG(t *testing.T) {
	for _, s := range []Size{{640, 400}, DefaultSize, {123, 457}} {
		t.Run(fmt.Sprintf("%dx%d", s.Width, s.Height), func(t *testing.T) {
			b, err := Draw(runsPlot(), PNG, s)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("the PNG does not decode: %v", err)
			}
			if got := img.Bounds().Size(); got.X != s.Width || got.Y != s.Height {
				t.Errorf("size %dx%d, want %dx%d", got.X, got.Y, s.Width, s.Height)
			}
		})
	}
}

func TestDataURI(t *testing.T) {
	uri, err := DataURI(runsPlot())
	if err != nil {
		t.Fatal(err)
	}
	b64, ok := strings.CutPrefix(uri, "data:image/svg+xml;base64,")
	if !ok {
		t.Fatalf("uri = %.60s…", uri)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	svg, err := DrawSVG(runsPlot())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, svg) {
		t.Error("the data URI is not DrawSVG's bytes")
	}
}

// TestDrawTicks: an axis counting many runs labels at most maxTickLabels
// of them; a plot output's x axis is numbered by gonum.
func TestDrawTicks(t *testing.T) {
	p := &zen.Plot{Name: "many", Series: []zen.Series{{Name: "m"}}}
	for i := 1; i <= 40; i++ {
		p.Ticks = append(p.Ticks, zen.Tick{X: float64(i), Label: fmt.Sprintf("v%d", i)})
		p.Series[0].Points = append(p.Series[0].Points, zen.Point{X: float64(i), Y: float64(i * i)})
	}
	b, err := DrawSVG(p)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, s := range svgText(t, b) {
		if strings.HasPrefix(s, "v") {
			labels = append(labels, s)
		}
	}
	if len(labels) == 0 || len(labels) > maxTickLabels || labels[0] != "v1" {
		t.Errorf("x labels = %v: want v1 and at most %d", labels, maxTickLabels)
	}

	roc := &zen.Plot{Name: "eval.roc", Title: "eval.roc", XLabel: "fpr", YLabel: "tpr",
		Series: []zen.Series{{Name: "tpr", Points: []zen.Point{{X: 0, Y: 0}, {X: 0.1, Y: 0.6}, {X: 1, Y: 1}}}}}
	b, err = DrawSVG(roc)
	if err != nil {
		t.Fatal(err)
	}
	if texts := strings.Join(svgText(t, b), " "); !strings.Contains(texts, "0.5") || !strings.Contains(texts, "fpr") {
		t.Errorf("the ROC's axes: %s", texts)
	}
}

// TestDrawOnePoint: one run, or a metric one run has, still draws.
func TestDrawOnePoint(t *testing.T) {
	p := &zen.Plot{Name: "one", Ticks: []zen.Tick{{X: 1, Label: "1"}},
		Series: []zen.Series{{Name: "a", Points: []zen.Point{{X: 1, Y: 3}}}, {Name: "empty", Points: []zen.Point{}}}}
	for _, f := range Formats {
		if _, err := Draw(p, f, DefaultSize); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestDrawErrors(t *testing.T) {
	for _, s := range []Size{{0, 400}, {99, 400}, {800, 8001}} {
		_, err := Draw(runsPlot(), PNG, s)
		want := fmt.Sprintf("size %dx%d: want each side from 100 to 8000 pixels", s.Width, s.Height)
		if err == nil || err.Error() != want {
			t.Errorf("size %v: err = %v, want %s", s, err, want)
		}
	}
	if _, err := Draw(runsPlot(), "pdf", DefaultSize); err == nil || err.Error() != `format "pdf": want svg or png` {
		t.Errorf("pdf: err = %v", err)
	}
}

func TestFormatOf(t *testing.T) {
	for _, tt := range []struct{ path, want, err string }{
		{"plots/demo.svg", "svg", ""},
		{"out.PNG", "png", ""},
		{"a.b/chart.png", "png", ""},
		{"chart.pdf", "", "chart.pdf: zen draws .svg or .png, not .pdf"},
		{"plots/chart", "", "plots/chart has no extension: end it with .svg or .png"},
	} {
		f, err := FormatOf(tt.path)
		if string(f) != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("FormatOf(%q) = %q, %v; want %q, %q", tt.path, f, err, tt.want, tt.err)
		}
	}
	if f, err := ParseFormat("PNG"); f != PNG || err != nil {
		t.Errorf("ParseFormat(PNG) = %q, %v", f, err)
	}
	if _, err := ParseFormat("jpg"); err == nil || err.Error() != `format "jpg": want svg or png` {
		t.Errorf("ParseFormat(jpg): %v", err)
	}
}
