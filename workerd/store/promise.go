package store

import (
	"encoding/json"
	"fmt"
)

// tPromise holds workflow promises, per (workflow, key, promise name).
const tPromise = 'p'

// PromiseWaiter is an invocation waiting on a GetPromise.
type PromiseWaiter struct {
	InvocationID []byte `json:"id"`
	CompletionID uint32 `json:"c"`
}

// Promise is one durable promise of a workflow.
type Promise struct {
	Completed bool            `json:"done,omitempty"`
	Result    Result          `json:"r"`
	Waiters   []PromiseWaiter `json:"w,omitempty"`
}

func (p *Partition) promiseKey(service, key, name string) []byte {
	return p.key(tPromise, objectKey(service, key), []byte(name))
}

// Promise reads a promise; a promise never written is returned empty.
func (t *Txn) Promise(service, key, name string) (*Promise, error) {
	v, ok, err := t.get(t.p.promiseKey(service, key, name))
	if err != nil || !ok {
		return &Promise{}, err
	}
	pr := &Promise{}
	if err := json.Unmarshal(v, pr); err != nil {
		return nil, fmt.Errorf("decode promise %s/%s/%s: %w", service, key, name, err)
	}
	return pr, nil
}

// PutPromise writes a promise.
func (t *Txn) PutPromise(service, key, name string, pr *Promise) error {
	v, err := json.Marshal(pr)
	if err != nil {
		return err
	}
	t.put(t.p.promiseKey(service, key, name), v)
	return nil
}

// DeletePromises removes every promise of a workflow (purge of its run).
func (t *Txn) DeletePromises(service, key string) error {
	kvs, err := t.scan(t.p.promiseKey(service, key, ""), 0)
	if err != nil {
		return err
	}
	for _, x := range kvs {
		t.del(x.k)
	}
	return nil
}
