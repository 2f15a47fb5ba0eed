package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rulebook"
)

// The limiter rule book (package rulebook), as restate-server 1.7.12 serves it:
// PUT /limits/rules upserts a batch of rules, POST /limits/rules/bulk-delete deletes one, each
// batch atomically with compare-and-set on metadata.KeyRuleBook; sys_rules lists the book.
// The restate CLI's `rules set/enable/disable/delete` read the rule from sys_rules and send
// one-entry batches guarded by its version. The rules are kept, not enforced.

func errRulePrecondition(e *rulebook.PreconditionError) *apiError {
	return &apiError{status: http.StatusConflict, message: e.Error()}
}

func errRuleBookFull(e *rulebook.FullError) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, message: e.Error()}
}

// ruleJSON is a rule as the admin API answers it (Restate's RuleResponse).
type ruleJSON struct {
	Pattern      string     `json:"pattern"`
	Limits       limitsJSON `json:"limits"`
	Description  *string    `json:"description,omitempty"`
	Disabled     bool       `json:"disabled"`
	Version      uint32     `json:"version"`
	LastModified int64      `json:"last_modified_millis_since_epoch"`
}

type limitsJSON struct {
	Concurrency uint32 `json:"concurrency,omitempty"`
}

func (a *api) upsertRules(w http.ResponseWriter, r *http.Request, _ int) error {
	changes, err := readRuleBatch(r, upsertRuleStruct)
	if err != nil {
		return err
	}
	book, err := a.updateRuleBook(r.Context(), func(b *rulebook.Book) (bool, error) {
		return b.Apply(changes, a.opts.now())
	})
	if err != nil {
		return err
	}
	// Every entry is answered with its rule as the batch left it, duplicates included.
	out := make([]ruleJSON, 0, len(changes))
	for _, c := range changes {
		if rule, ok := book.Rules[c.Pattern]; ok {
			out = append(out, ruleJSON{
				Pattern: c.Pattern, Limits: limitsJSON{rule.Concurrency}, Description: rule.Description,
				Disabled: rule.Disabled, Version: rule.Version, LastModified: rule.LastModified,
			})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *api) deleteRules(w http.ResponseWriter, r *http.Request, _ int) error {
	changes, err := readRuleBatch(r, deleteRuleStruct)
	if err != nil {
		return err
	}
	var removed []string
	_, err = a.updateRuleBook(r.Context(), func(b *rulebook.Book) (bool, error) {
		// The answer names the entries whose rule the book had when the batch applied.
		removed = removed[:0]
		for _, c := range changes {
			if _, ok := b.Rules[c.Pattern]; ok {
				removed = append(removed, c.Pattern)
			}
		}
		return b.Apply(changes, a.opts.now())
	})
	if err != nil {
		return err
	}
	if removed == nil {
		removed = []string{}
	}
	writeJSON(w, http.StatusOK, removed)
	return nil
}

// readRuleBatch reads a batch body: declared and well-formed JSON as every admin body
// (decodeBody), then of the batch's shape as Restate's serde reads it (rules_body.go).
func readRuleBatch(r *http.Request, s ruleStruct) ([]rulebook.Change, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return nil, errBodySyntax(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	var raw json.RawMessage
	if err := decodeBody(r, &raw); err != nil {
		return nil, err
	}
	changes, fault := decodeRuleBatch(b, s)
	if fault != nil {
		return nil, fault.apiError(b)
	}
	return changes, nil
}

// loadRuleBook reads the rule book and its store version (0 if it was never written).
func loadRuleBook(ctx context.Context, store metadata.Store) (*rulebook.Book, uint64, error) {
	v, err := store.Get(ctx, metadata.KeyRuleBook)
	if errors.Is(err, metadata.ErrNotFound) {
		book, _ := rulebook.Decode(nil)
		return book, 0, nil
	}
	if err != nil {
		return nil, 0, errStore(err)
	}
	book, err := rulebook.Decode(v.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("rule book version %d: %w", v.Version, err)
	}
	return book, v.Version, nil
}

// updateRuleBook applies mutate to the newest rule book and stores the result with
// compare-and-set, starting over from a fresh read when another writer got there first
// (so a batch's preconditions are checked against the book it is written over). Nothing is
// written when mutate changes nothing. It returns the book as mutate left it.
func (a *api) updateRuleBook(ctx context.Context, mutate func(*rulebook.Book) (bool, error)) (*rulebook.Book, error) {
	store := a.opts.Store
	for range maxCASAttempts {
		book, version, err := loadRuleBook(ctx, store)
		if err != nil {
			return nil, err
		}
		changed, err := mutate(book)
		var pe *rulebook.PreconditionError
		var fe *rulebook.FullError
		switch {
		case errors.As(err, &pe):
			return nil, errRulePrecondition(pe)
		case errors.As(err, &fe):
			return nil, errRuleBookFull(fe)
		case err != nil:
			return nil, err
		case !changed:
			return book, nil
		}
		b, err := book.Encode()
		if err != nil {
			return nil, fmt.Errorf("encode rule book: %w", err)
		}
		if raced, err := putIfVersion(ctx, store, metadata.KeyRuleBook, b, version); err != nil {
			return nil, err
		} else if raced {
			continue
		}
		a.log.Info("rule book changed", "version", book.Version, "rules", len(book.Rules))
		return book, nil
	}
	return nil, errStore(fmt.Errorf("rule book kept changing during %d update attempts", maxCASAttempts))
}

// sysRulesRows are the rows of sys_rules, by pattern.
func sysRulesRows(book *rulebook.Book) []map[string]any {
	rows := make([]map[string]any, 0, len(book.Rules))
	for _, p := range book.Patterns() {
		rule := book.Rules[p]
		row := map[string]any{
			"pattern":       p,
			"disabled":      rule.Disabled,
			"version":       int64(rule.Version),
			"last_modified": time.UnixMilli(rule.LastModified),
		}
		if rule.Concurrency != 0 {
			row["concurrency"] = int64(rule.Concurrency)
		}
		if rule.Description != nil {
			row["description"] = *rule.Description
		}
		rows = append(rows, row)
	}
	return rows
}
