package membership

import (
	"strconv"
	"time"

	"github.com/hashicorp/serf/serf"
)

// EventKind says what happened to a member.
type EventKind int

// Kinds of events.
const (
	EventJoined  EventKind = iota + 1 // a life joined (or came back after it was declared failed)
	EventUpdated                      // a life changed its tags
	EventFailed                       // a life was declared dead without leaving
	EventLeft                         // a life left gracefully
	EventReaped                       // a failed or left life was forgotten
)

func (k EventKind) String() string {
	switch k {
	case EventJoined:
		return "joined"
	case EventUpdated:
		return "updated"
	case EventFailed:
		return "failed"
	case EventLeft:
		return "left"
	case EventReaped:
		return "reaped"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a change of one life. Events are per life, not collapsed like Members: a Failed
// event of a generation that IsCurrent reports as superseded is the end of a previous life,
// not a failure of the node.
type Event struct {
	Kind   EventKind
	Member Member
}

// subscriberBuffer is how many events a subscriber may fall behind before it is dropped.
const subscriberBuffer = 256

type subscriber struct{ ch chan Event }

// Subscribe returns a channel of the events seen from now on, and a function that ends the
// subscription and closes the channel. Read Members after subscribing for the state so far.
// The channel is also closed when the Membership closes, and when the subscriber falls 256
// events behind (gossip cannot wait for a slow reader): a channel closed without a cancel
// means "subscribe again and re-read Members".
func (m *Membership) Subscribe() (<-chan Event, func()) {
	sub := &subscriber{ch: make(chan Event, subscriberBuffer)}
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		close(sub.ch)
		return sub.ch, func() {}
	}
	m.subs[sub] = struct{}{}
	m.mu.Unlock()
	return sub.ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.subs[sub]; ok {
			delete(m.subs, sub)
			close(sub.ch)
		}
	}
}

// runEvents turns serf's member events into Events until serf shuts down.
func (m *Membership) runEvents() {
	defer m.wg.Done()
	shutdown := m.serf.ShutdownCh()
	for {
		select {
		case e := <-m.serfEvents:
			m.handle(e)
		case <-shutdown:
			// Free the buffer for whatever serf still forwards; nobody reads it after this.
			for {
				select {
				case <-m.serfEvents:
				default:
					return
				}
			}
		}
	}
}

func (m *Membership) handle(e serf.Event) {
	me, ok := e.(serf.MemberEvent)
	if !ok {
		return
	}
	var kind EventKind
	switch me.Type {
	case serf.EventMemberJoin:
		kind = EventJoined
	case serf.EventMemberUpdate:
		kind = EventUpdated
	case serf.EventMemberFailed:
		kind = EventFailed
	case serf.EventMemberLeave:
		kind = EventLeft
	case serf.EventMemberReap:
		kind = EventReaped
	default:
		return
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sm := range me.Members {
		mem, ok := m.toMember(sm)
		if !ok {
			m.logger.Debug("ignoring member of another cluster", "member", sm.Name,
				"cluster", sm.Tags[tagCluster], "event", kind)
			continue
		}
		switch kind {
		case EventJoined, EventUpdated:
			mem.State = StateAlive
		case EventFailed:
			mem.State = StateFailed
		case EventLeft:
			mem.State = StateLeft
		}
		m.observe(mem.Name, mem.Generation)
		if kind == EventReaped {
			delete(m.lives, sm.Name)
		} else if l, ok := m.lives[sm.Name]; !ok || l.state != mem.State {
			m.lives[sm.Name] = life{state: mem.State, since: now}
		}
		mem.Since = now
		m.logger.Debug("member event", "event", kind, "node", mem.Name, "generation", mem.Generation)
		m.publish(Event{Kind: kind, Member: mem})
	}
}

// publish hands ev to every subscriber; m.mu is held.
func (m *Membership) publish(ev Event) {
	for sub := range m.subs {
		select {
		case sub.ch <- ev:
		default:
			delete(m.subs, sub)
			close(sub.ch)
			m.logger.Warn("dropped a subscriber that fell behind", "buffer", subscriberBuffer)
		}
	}
}
