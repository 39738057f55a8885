package dpop_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestReadmeQuickStart checks that the first Go block of README.md is a
// complete program that compiles as is: it is written into a directory of
// this module (under testdata, which ./... skips) and vetted.
func TestReadmeQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program with the go command; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const open, end = "\n```go\n", "\n```\n"
	i := bytes.Index(readme, []byte(open))
	if i < 0 {
		t.Fatal("README.md has no ```go block")
	}
	src := readme[i+len(open):]
	j := bytes.Index(src, []byte(end))
	if j < 0 {
		t.Fatal("README.md's first ```go block is not closed")
	}
	src = src[:j+1]
	if !bytes.HasPrefix(src, []byte("package main\n")) {
		t.Fatalf("README.md's first Go block starts with %q; want package main", src[:min(len(src), 40)])
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("testdata", "readme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		os.Remove("testdata") // only if empty: it did not exist before
	})
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "vet", "./"+filepath.ToSlash(dir)).CombinedOutput()
	if err != nil {
		t.Errorf("go vet of README.md's quick start: %v\n%s", err, out)
	}
	if formatted, err := exec.CommandContext(ctx, "gofmt", "-l", dir).Output(); err == nil && len(formatted) > 0 {
		t.Errorf("README.md's quick start is not gofmt-formatted")
	}
}
