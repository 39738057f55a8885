package ctxwait

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDoReturns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	want := errors.New("f's error")
	v, err := Do(ctx, func() (int, error) { return 7, want })
	if v != 7 || err != want {
		t.Errorf("Do = %d, %v; want 7, %v", v, err, want)
	}
	v, err = Do(context.Background(), func() (int, error) { return 8, nil })
	if v != 8 || err != nil {
		t.Errorf("Do without a deadline = %d, %v; want 8, nil", v, err)
	}
}

func TestDoStopsWaiting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	ended := make(chan struct{})
	v, err := Do(ctx, func() (int, error) {
		defer close(ended)
		<-release
		return 1, nil
	})
	if v != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do = %d, %v; want 0, context.DeadlineExceeded", v, err)
	}
	close(release)
	<-ended // f runs to its end
}

func TestDoPanicsOnCallersGoroutine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v; want boom", r)
		}
	}()
	Do(ctx, func() (int, error) { panic("boom") })
	t.Error("Do returned after f panicked")
}
