package replicated

import "sync"

// completer delivers append callbacks in the order their owner queued them (under its own
// lock, in the order its state machine decided the outcomes), outside that lock. Whoever
// finds no delivery under way delivers everything queued, including what others queue
// meanwhile, so the goroutine that committed a batch usually runs its callback itself,
// without a hand-off to another goroutine. Goroutines that talk to log servers or
// sequencers must not run callbacks (a re-entrant one that appends again and blocks for
// backpressure would stall the very goroutine that releases it): they use deliverAsync.
type completer struct {
	wrap func(error) error // adds the loglet's context to errors

	mu         sync.Mutex
	queue      []completion
	delivering bool
}

func newCompleter(wrap func(error) error) *completer {
	return &completer{wrap: wrap}
}

// push queues completions; deliver or deliverAsync runs them.
func (c *completer) push(cs []completion) {
	if len(cs) == 0 {
		return
	}
	c.mu.Lock()
	c.queue = append(c.queue, cs...)
	c.mu.Unlock()
}

// deliver runs the queued callbacks on this goroutine, unless a delivery under way will.
// Callers hold none of the owner's locks.
func (c *completer) deliver() {
	c.mu.Lock()
	if c.delivering || len(c.queue) == 0 {
		c.mu.Unlock()
		return
	}
	c.delivering = true
	c.loop()
}

// deliverAsync is deliver on a new goroutine, counted in wg (which must be counting the
// caller, so that a Wait cannot have returned).
func (c *completer) deliverAsync(wg *sync.WaitGroup) {
	c.mu.Lock()
	if c.delivering || len(c.queue) == 0 {
		c.mu.Unlock()
		return
	}
	c.delivering = true
	c.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.mu.Lock()
		c.loop()
	}()
}

// loop delivers until the queue is empty. Called with c.mu held and delivering set;
// returns with c.mu released.
func (c *completer) loop() {
	for len(c.queue) > 0 {
		cs := c.queue
		c.queue = nil
		c.mu.Unlock()
		for _, x := range cs {
			err := x.err
			if err != nil {
				err = c.wrap(err)
			}
			x.done(x.first, err)
		}
		c.mu.Lock()
	}
	c.delivering = false
	c.mu.Unlock()
}
