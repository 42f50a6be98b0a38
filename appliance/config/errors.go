package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem with one field of the configuration.
type FieldError struct {
	Path    string // lan.address, machines[3].macs[0]
	Line    int    // line in the file, 0 when the field is not in it
	Problem string // what is wrong
	Fix     string // what to do about it; may be empty
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Errors is every problem found in one configuration, in file order.
type Errors []FieldError

// mention says whether a problem was found with path, or inside it.
func (es Errors) mention(path string) bool {
	for _, e := range es {
		if e.Path == path || strings.HasPrefix(path, e.Path+".") || strings.HasPrefix(path, e.Path+"[") {
			return true
		}
	}
	return false
}

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// fieldErrors collects problems while a configuration is checked.
type fieldErrors struct{ list Errors }

func (f *fieldErrors) add(path, problem, fix string) {
	f.list = append(f.list, FieldError{Path: path, Problem: problem, Fix: fix})
}

func (f *fieldErrors) err() error {
	if len(f.list) == 0 {
		return nil
	}
	return f.list
}

// closest returns the candidate nearest to word by edit distance, or "" when
// none is near enough to be a plausible typo.
func closest(word string, candidates []string) string {
	best, bestDist := "", len(word)/3+2
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
