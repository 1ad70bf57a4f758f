package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/podsphere/podsphere/api"
)

// writeJSON prints v as indented JSON for scripts.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// writeTable prints rows under header as plain aligned columns, as govc's
// tabular verbs do: no borders, three spaces between columns, no wrapping.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	var buf bytes.Buffer
	pad := tw.CellPadding{Global: tw.Padding{Left: "", Right: "   "}}
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenRows: tw.Off, BetweenColumns: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
			},
		})),
		tablewriter.WithConfig(tablewriter.Config{
			Header: tw.CellConfig{
				Formatting: tw.CellFormatting{AutoFormat: tw.Off, AutoWrap: tw.WrapNone},
				Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
				Padding:    pad,
			},
			Row: tw.CellConfig{
				Formatting: tw.CellFormatting{AutoWrap: tw.WrapNone},
				Alignment:  tw.CellAlignment{Global: tw.AlignLeft},
				Padding:    pad,
			},
		}),
	)
	if header != nil {
		t.Header(header)
	}
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			return fmt.Errorf("render table: %w", err)
		}
	}
	if len(rows) == 0 && header == nil {
		return nil
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	// The renderer pads the last column too; trailing blanks upset diffs.
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		nl := strings.HasSuffix(line, "\n")
		line = strings.TrimRight(line, " \n")
		if nl {
			line += "\n"
		}
		if _, err := io.WriteString(w, line); err != nil {
			return err
		}
	}
	return nil
}

// block prints govc's "Name:  value" info layout: a Name line, then
// indented fields with values aligned in one column.
type block struct {
	name   string
	fields [][2]string
}

func (b *block) add(label, format string, args ...any) {
	b.fields = append(b.fields, [2]string{label, fmt.Sprintf(format, args...)})
}

// infoColumn is where values start in info blocks, matching govc's pool.info.
const infoColumn = 20

// list adds a field of several values, one a line under each other in the
// value column; no values print as "-".
func (b *block) list(label string, values []string) {
	if len(values) == 0 {
		b.add(label, "-")
		return
	}
	b.add(label, "%s", values[0])
	for _, v := range values[1:] {
		b.fields = append(b.fields, [2]string{"", v})
	}
}

func (b *block) write(w io.Writer) error {
	col := infoColumn
	for _, f := range b.fields {
		col = max(col, 2+len(f[0])+1+2)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "%-*s%s\n", col, "Name:", b.name)
	for _, f := range b.fields {
		label := f[0] + ":"
		if f[0] == "" {
			label = "" // a continuation line of list
		}
		fmt.Fprintf(&s, "  %-*s%s\n", col-2, label, f[1])
	}
	_, err := io.WriteString(w, s.String())
	return err
}

// mhz and mb print a figure with its unit; -1 is unlimited.
func mhz(v int64) string { return unit(v, "MHz") }
func mb(v int64) string  { return unit(v, "MB") }

func unit(v int64, u string) string {
	if v < 0 {
		return "unlimited"
	}
	return strconv.FormatInt(v, 10) + u
}

// limitString prints a quota or allocation limit: -1 is unlimited.
func limitString(v int64, u string) string {
	if v < 0 {
		return "unlimited"
	}
	return strconv.FormatInt(v, 10) + u
}

// percent formats part/whole as 12.0%; a zero whole gives 0.0%.
func percent(part, whole int64) string {
	if whole <= 0 {
		return "0.0%"
	}
	return fmt.Sprintf("%.1f%%", float64(part)*100/float64(whole))
}

// sharesString prints a shares setting as govc does: the level, or the
// number for custom shares.
func sharesString(s api.Shares) string {
	switch s.Level {
	case "custom":
		return strconv.FormatInt(s.Value, 10)
	case "":
		return "normal"
	}
	return s.Level
}

// timeString prints t in loc as 2006-01-02 15:04:05, "-" when unset.
func timeString(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	if loc != nil {
		t = t.In(loc)
	}
	return t.Format(time.DateTime)
}

// ago prints how long before now t was, rounded to the second.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
