// Package ctxwait waits for a call that cannot be stopped no longer than a
// context allows.
package ctxwait

import "context"

// Do runs f on a goroutine of its own and returns what it returns, or
// ctx's error once ctx is done, whichever comes first; f runs to its end
// either way, so it must release what it holds itself. A panic in f is
// raised again on the caller's goroutine, where it would have been had f
// run there, when the caller is still waiting.
func Do[T any](ctx context.Context, f func() (T, error)) (T, error) {
	if ctx.Done() == nil {
		return f()
	}
	type result struct {
		v        T
		err      error
		panicked any
	}
	ch := make(chan result, 1) // the goroutine never blocks on it
	go func() {
		var r result
		defer func() {
			r.panicked = recover()
			ch <- r
		}()
		r.v, r.err = f()
	}()
	select {
	case r := <-ch:
		if r.panicked != nil {
			panic(r.panicked)
		}
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
