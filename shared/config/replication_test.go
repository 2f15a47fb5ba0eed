package config

import (
	"testing"
)

func TestReplicationText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Replication
		wantErr bool
	}{
		{"1", 1, false},
		{" 3 ", 3, false},
		{"{node: 3}", 3, false},
		{"{node=2}", 2, false},
		{`{"node": 2}`, 2, false},
		{"{zone: 2, node: 3}", 3, false},
		{"{zone: 2}", 0, true},
		{"{rack: 2, node: 3}", 0, true},
		{"{node: x}", 0, true},
		{"{node 3}", 0, true},
		{"{node: 3", 0, true},
		{"0", 0, true},
		{"-1", 0, true},
		{"256", 0, true},
		{"three", 0, true},
	}
	for _, tt := range tests {
		var r Replication
		err := r.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("UnmarshalText(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && r != tt.want {
			t.Errorf("UnmarshalText(%q) = %d, want %d", tt.in, r, tt.want)
		}
	}
}

func TestReplicationTOML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      any
		want    Replication
		wantErr bool
	}{
		{int64(2), 2, false},
		{map[string]any{"node": int64(3)}, 3, false},
		{map[string]any{"node": int64(3), "region": int64(1)}, 3, false},
		{map[string]any{"zone": int64(3)}, 0, true},
		{map[string]any{"node": "3"}, 0, true},
		{"{node: 4}", 4, false},
		{1.5, 0, true},
	}
	for _, tt := range tests {
		var r Replication
		err := r.UnmarshalTOML(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("UnmarshalTOML(%v) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && r != tt.want {
			t.Errorf("UnmarshalTOML(%v) = %d, want %d", tt.in, r, tt.want)
		}
	}
}
