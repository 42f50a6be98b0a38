package cloudinit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A template is parsed once, and read again when the operator changes
// it; a broken one stays refused until it changes; a missing one is an
// error each time.
func TestTemplatesAreReadAgainWhenTheyChange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "base.yaml")
	c := templateCache{byFile: map[string]parsedTemplate{}}
	render := func() (string, error) {
		tpl, err := c.get(file)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		err = tpl.Execute(&b, map[string]string{"Host": "n1"})
		return b.String(), err
	}
	write := func(text string, age time.Duration) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// Each version a different time: a change within one clock tick
		// of the file system is what the size is also compared for.
		at := time.Now().Add(-age)
		if err := os.Chtimes(file, at, at); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := render(); !os.IsNotExist(err) {
		t.Fatalf("no file yet: %v", err)
	}
	write("hostname: {{.Host}}\n", 3*time.Hour)
	if out, err := render(); err != nil || out != "hostname: n1\n" {
		t.Fatalf("first version: %q %v", out, err)
	}
	first, _ := c.get(file)
	if again, _ := c.get(file); again != first {
		t.Error("an unchanged template was parsed again")
	}
	write("hostname: {{.Host\n", 2*time.Hour)
	if _, err := render(); err == nil || !strings.Contains(err.Error(), "base.yaml") {
		t.Fatalf("a broken template: %v", err)
	}
	if _, err := c.get(file); err == nil {
		t.Error("a broken template was let through the second time")
	}
	write("fqdn: {{.Host}}.lab\n", time.Hour)
	if out, err := render(); err != nil || out != "fqdn: n1.lab\n" {
		t.Fatalf("the mended version: %q %v", out, err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := render(); !os.IsNotExist(err) {
		t.Fatalf("a removed template: %v", err)
	}
}
