package schema

import (
	"testing"
	"time"
)

func TestRetention(t *testing.T) {
	t.Parallel()
	const day, hour = 24 * time.Hour, time.Hour
	svc := func(ty ServiceType, journal, idem time.Duration) *Service {
		return &Service{Name: "S", Type: ty, JournalRetention: journal, IdempotencyRetention: idem}
	}
	tests := []struct {
		name                string
		svc                 *Service
		h                   Handler
		idempotent          bool
		completion, journal time.Duration
	}{
		{"plain call keeps status as long as its journal", svc(ServiceTypeService, day, day), Handler{Name: "h"}, false, day, day},
		{"journal retention disabled keeps nothing", svc(ServiceTypeService, 0, day), Handler{Name: "h"}, false, 0, 0},
		{"idempotent call keeps the result for the longer retention", svc(ServiceTypeService, hour, day), Handler{Name: "h"}, true, day, hour},
		{"handler overrides win", svc(ServiceTypeService, day, day), Handler{Name: "h", JournalRetention: 2 * hour, IdempotencyRetention: 3 * hour}, true, 3 * hour, 2 * hour},
		{"idempotency retention of zero keeps nothing", svc(ServiceTypeService, 0, 0), Handler{Name: "h"}, true, 0, 0},
		{"untyped workflow handler uses the workflow retention", &Service{Name: "W", Type: ServiceTypeWorkflow, WorkflowCompletionRetention: 5 * hour}, Handler{Name: "run"}, false, 5 * hour, 0},
		{"shared workflow handler is a plain call", &Service{Name: "W", Type: ServiceTypeWorkflow, WorkflowCompletionRetention: 5 * hour}, Handler{Name: "peek", Type: HandlerShared}, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, j := tt.svc.Retention(&tt.h, tt.idempotent)
			if c != tt.completion || j != tt.journal {
				t.Errorf("Retention = (%v, %v), want (%v, %v)", c, j, tt.completion, tt.journal)
			}
		})
	}
}
