package main

// `go test` runs every case under manifests/argocd/resource_customizations, one subtest
// each, with the clock pinned as `luacheck check` pins it.

import (
	"encoding/json"
	"testing"
	"time"
)

const root = "../../manifests/argocd/resource_customizations"

func TestCustomizations(t *testing.T) {
	pinned, _ := time.Parse(time.RFC3339, PinnedNow)
	Clock = func() time.Time { return pinned }
	results, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 {
		t.Fatal("no test cases found under " + root)
	}
	for _, r := range results {
		t.Run(r.Suite+"/"+r.Case, func(t *testing.T) {
			if !r.OK {
				detail, _ := json.Marshal(r)
				t.Error(string(detail))
			}
		})
	}
}

func TestInvalidHealthStatusBecomesUnknown(t *testing.T) {
	h, err := RunHealth(map[string]any{}, `return {status = "Great", message = "x"}`)
	if err != nil || h.Status != "Unknown" {
		t.Fatalf("got %+v, %v", h, err)
	}
}

func TestNoStringLibraryAsInArgoCDConfigMap(t *testing.T) {
	if _, err := RunHealth(map[string]any{}, `return {status = string.lower("Healthy")}`); err == nil {
		t.Fatal("string library must not be open: Argo CD does not open it for argocd-cm scripts")
	}
	if _, err := RunHealth(map[string]any{}, `return {status = os.date("%Y")}`); err == nil {
		t.Fatal("there is no global os; scripts must require it")
	}
}

func TestEmptiedAnnotationsKeepTheOriginalMap(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{"annotations": map[string]any{"a": "b"}}}
	got, err := RunAction(obj, `obj.metadata.annotations["a"] = nil return obj`)
	if err != nil {
		t.Fatal(err)
	}
	ann := got["metadata"].(map[string]any)["annotations"].(map[string]any)
	if ann["a"] != "b" {
		t.Fatalf("got %v", ann)
	}
}
