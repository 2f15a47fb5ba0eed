package replicated

import "sync"

// completer runs append callbacks on its own goroutine, in the order they were queued.
// Senders and the remote appender only queue them, so a slow or re-entrant callback (one
// that appends again and blocks for backpressure) can never stall the goroutines that
// talk to log servers and release the permits it waits for. Owners queue under their own
// lock, in the order their state machine decided the outcomes.
type completer struct {
	wrap func(error) error // adds the loglet's context to errors

	mu       sync.Mutex
	queue    []completion
	stopping bool
	stopped  bool
	wake     chan struct{}
}

func newCompleter(wrap func(error) error) *completer {
	return &completer{wrap: wrap, wake: make(chan struct{}, 1)}
}

// push queues completions. It returns false once the completer has stopped; the caller
// then runs them itself (outside its locks) with deliver.
func (c *completer) push(cs []completion) bool {
	if len(cs) == 0 {
		return true
	}
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, cs...)
	c.mu.Unlock()
	c.signal()
	return true
}

func (c *completer) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run delivers until stop, then delivers what is left and returns.
func (c *completer) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c.mu.Lock()
		cs := c.queue
		c.queue = nil
		if len(cs) == 0 && c.stopping {
			c.stopped = true
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if len(cs) == 0 {
			<-c.wake
			continue
		}
		c.deliver(cs)
	}
}

// stop makes run return once everything queued so far is delivered.
func (c *completer) stop() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.signal()
}

func (c *completer) deliver(cs []completion) {
	for _, x := range cs {
		err := x.err
		if err != nil {
			err = c.wrap(err)
		}
		x.done(x.first, err)
	}
}
