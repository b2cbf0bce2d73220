package main

import (
	"encoding/json"
	"testing"
)

func TestBody16kIs16KiBOfJSON(t *testing.T) {
	if len(body16k) != 16<<10 {
		t.Fatalf("len(body16k) = %d, want %d", len(body16k), 16<<10)
	}
	var v struct {
		Projects []map[string]string `json:"projects"`
	}
	if err := json.Unmarshal(body16k, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Projects) < 100 {
		t.Fatalf("%d projects", len(v.Projects))
	}
}
