// Package rulebook owns the cluster-global limiter rule book of restate-server 1.7.12: rules
// that cap the concurrency of invocations by scope and limit key, each named by a pattern
// ("*", "scope1/*", "scope1/tenant1/*"). The book is stored as JSON in the metadata store under
// metadata.KeyRuleBook and changed in atomic batches through the admin API (/limits/rules).
//
// Nothing here enforces a rule. In Restate a rule limits only invocations that carry a scope,
// and without vqueues (its default) none do; this server has no scopes at all. The book is
// kept, versioned and listed exactly as Restate keeps it, so that its CLI's `restate rules`
// commands work, and limits nothing.
package rulebook

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// MaxRules caps the rules of one book, as in Restate: an insert past it fails the batch.
const MaxRules = 10_000

// Rule is one rule of the book; its pattern is its key there.
type Rule struct {
	// Version advances when what the runtime would use changes (the limit, disabled);
	// a new rule takes the book's version of the batch that creates it, so a rule deleted
	// and created again never shows a version it had before.
	Version uint32 `json:"version"`
	// Concurrency caps concurrently running invocations; 0 is unlimited (Restate's None:
	// its limit is never 0).
	Concurrency uint32 `json:"concurrency,omitempty"`
	// Description is the operator's note; nil when none was given, which is not "".
	Description *string `json:"description,omitempty"`
	// Disabled parks the rule: kept and listed, treated as absent.
	Disabled bool `json:"disabled,omitempty"`
	// LastModified is when Version last advanced, in milliseconds since the epoch.
	LastModified int64 `json:"last_modified_ms"`
}

// Book is the rule book. Version 0 is the empty book never written; each batch that
// changes anything advances it by one.
type Book struct {
	Version uint32          `json:"version"`
	Rules   map[string]Rule `json:"rules,omitempty"`
}

// Decode reads a book as stored; nil is the empty book.
func Decode(b []byte) (*Book, error) {
	book := &Book{}
	if b != nil {
		if err := json.Unmarshal(b, book); err != nil {
			return nil, fmt.Errorf("decode rule book: %w", err)
		}
	}
	if book.Rules == nil {
		book.Rules = map[string]Rule{}
	}
	return book, nil
}

// Encode is the stored form of the book.
func (b *Book) Encode() ([]byte, error) { return json.Marshal(b) }

// Patterns lists the book's patterns in byte order.
func (b *Book) Patterns() []string { return slices.Sorted(maps.Keys(b.Rules)) }

// PreconditionKind is what a change expects of its rule beforehand.
type PreconditionKind int

const (
	Unconditional  PreconditionKind = iota // Restate's None
	MatchesVersion                         // the rule exists at Precondition.Version
	DoesNotExist                           // the rule is absent: an upsert is a strict insert
)

// Precondition guards one change of a batch.
type Precondition struct {
	Kind    PreconditionKind
	Version uint32 // for MatchesVersion
}

// String is Restate's debug form, which its error messages show: None, Matches(v3), DoesNotExist.
func (p Precondition) String() string {
	switch p.Kind {
	case MatchesVersion:
		return fmt.Sprintf("Matches(v%d)", p.Version)
	case DoesNotExist:
		return "DoesNotExist"
	default:
		return "None"
	}
}

func (p Precondition) holds(r Rule, exists bool) bool {
	switch p.Kind {
	case MatchesVersion:
		return exists && r.Version == p.Version
	case DoesNotExist:
		return !exists
	default:
		return true
	}
}

// Change is one entry of a batch: an upsert of the rule's whole body, or a delete.
type Change struct {
	Pattern      string // canonical (ParsePattern)
	Delete       bool
	Concurrency  uint32  // upsert: 0 is unlimited
	Description  *string // upsert
	Disabled     bool    // upsert
	Precondition Precondition
}

// PreconditionError is a change whose precondition did not hold; the batch failed.
type PreconditionError struct {
	Pattern      string
	Precondition Precondition
	Actual       uint32 // the rule's version, if Exists
	Exists       bool
}

func (e *PreconditionError) Error() string {
	actual := "None"
	if e.Exists {
		actual = fmt.Sprintf("Some(v%d)", e.Actual)
	}
	return fmt.Sprintf("rule precondition %s for pattern %s failed (actual version: %s)", e.Precondition, e.Pattern, actual)
}

// FullError is a batch that would leave more than MaxRules rules.
type FullError struct{ Cap int }

func (e *FullError) Error() string { return fmt.Sprintf("rule book is full (%d rules)", e.Cap) }

// Apply applies a batch of changes in order, all or nothing: each precondition and the cap
// are checked against the book as the changes before it in the batch left it, and on error
// the book is untouched. It reports whether anything changed; if so, the book's version has
// advanced by one. A rule's version advances only when its limit or disabled flag changes
// (then LastModified is now); a new description alone is stored under the old version.
// Upserting what is there already and deleting what is absent change nothing.
func (b *Book) Apply(changes []Change, now time.Time) (bool, error) {
	if b.Rules == nil {
		b.Rules = map[string]Rule{}
	}
	type slot struct {
		rule   Rule
		exists bool
	}
	staged := map[string]slot{}
	lookup := func(p string) (Rule, bool) {
		if s, ok := staged[p]; ok {
			return s.rule, s.exists
		}
		r, ok := b.Rules[p]
		return r, ok
	}
	count := len(b.Rules)
	next := b.Version + 1
	nowMs := now.UnixMilli()
	for _, c := range changes {
		cur, exists := lookup(c.Pattern)
		if !c.Precondition.holds(cur, exists) {
			return false, &PreconditionError{Pattern: c.Pattern, Precondition: c.Precondition, Actual: cur.Version, Exists: exists}
		}
		switch {
		case c.Delete:
			if exists {
				count--
				staged[c.Pattern] = slot{}
			}
		case !exists:
			if count >= MaxRules {
				return false, &FullError{Cap: MaxRules}
			}
			count++
			staged[c.Pattern] = slot{exists: true, rule: Rule{
				Version: next, Concurrency: c.Concurrency, Description: c.Description,
				Disabled: c.Disabled, LastModified: nowMs,
			}}
		default:
			runtime := cur.Concurrency != c.Concurrency || cur.Disabled != c.Disabled
			if !runtime && sameDescription(cur.Description, c.Description) {
				continue
			}
			r := cur
			r.Concurrency, r.Description, r.Disabled = c.Concurrency, c.Description, c.Disabled
			if runtime {
				r.Version++
				r.LastModified = nowMs
			}
			staged[c.Pattern] = slot{exists: true, rule: r}
		}
	}
	if len(staged) == 0 {
		return false, nil
	}
	for p, s := range staged {
		if s.exists {
			b.Rules[p] = s.rule
		} else {
			delete(b.Rules, p)
		}
	}
	b.Version = next
	return true, nil
}

func sameDescription(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
