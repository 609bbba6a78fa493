// Command luacheck runs Argo CD health checks and resource actions in gopher-lua, the
// Lua VM Argo CD embeds, with the libraries Argo CD opens for scripts from argocd-cm.
//
//	luacheck check  ROOT                 run every health_test.yaml / action_test.yaml
//	luacheck health ROOT FILE            health of each object in FILE (an object or a List)
//	luacheck action ROOT NAME FILE       the object in FILE after action NAME
//	luacheck discover ROOT FILE          actions offered for the object in FILE
//
// ROOT is a resource_customizations folder. Output is JSON, one line per result; check
// ends with "N passed, N failed" and exits 1 when any case failed. Set
// LUACHECK_NOW=RFC3339 to pin the clock that os.time and os.date read (check pins it
// to 2026-01-01T00:00:00Z unless told otherwise, so expected outputs are stable).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// PinnedNow is the clock of `check` unless LUACHECK_NOW says otherwise.
const PinnedNow = "2026-01-01T00:00:00Z"

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: luacheck check|health|action|discover ROOT [ARGS]")
		os.Exit(2)
	}
	cmd, root, args := os.Args[1], os.Args[2], os.Args[3:]
	now := os.Getenv("LUACHECK_NOW")
	if now == "" && cmd == "check" {
		now = PinnedNow
	}
	if now != "" {
		t, err := time.Parse(time.RFC3339, now)
		if err != nil {
			fatal(fmt.Errorf("LUACHECK_NOW: %w", err))
		}
		Clock = func() time.Time { return t }
	}
	var err error
	switch {
	case cmd == "check" && len(args) == 0:
		err = runCheck(root)
	case cmd == "health" && len(args) == 1:
		err = forEachObject(args[0], func(obj map[string]any) (any, error) { return healthOf(root, obj) })
	case cmd == "discover" && len(args) == 1:
		err = forEachObject(args[0], func(obj map[string]any) (any, error) {
			return scriptResult(root, obj, filepath.Join("actions", "discovery.lua"), func(o map[string]any, s string) (any, error) { return RunDiscovery(o, s) })
		})
	case cmd == "action" && len(args) == 2:
		err = forEachObject(args[1], func(obj map[string]any) (any, error) {
			return scriptResult(root, obj, filepath.Join("actions", args[0], "action.lua"), func(o map[string]any, s string) (any, error) { return RunAction(o, s) })
		})
	default:
		fmt.Fprintln(os.Stderr, "usage: luacheck check|health|action|discover ROOT [ARGS]")
		os.Exit(2)
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "luacheck:", err)
	os.Exit(1)
}

func runCheck(root string) error {
	results, err := Check(root)
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	passed, failedCount := 0, 0
	for _, r := range results {
		if err := out.Encode(r); err != nil {
			return err
		}
		if r.OK {
			passed++
		} else {
			failedCount++
		}
	}
	fmt.Printf("%d passed, %d failed\n", passed, failedCount)
	if failedCount > 0 || passed == 0 {
		os.Exit(1)
	}
	return nil
}

type named struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Result any    `json:"result"`
}

// forEachObject applies fn to the object in path, or to each item of a List.
func forEachObject(path string, fn func(map[string]any) (any, error)) error {
	obj, err := readObject(path)
	if err != nil {
		return err
	}
	items := []map[string]any{obj}
	if list, ok := obj["items"].([]any); ok {
		items = items[:0]
		for _, item := range list {
			if m, ok := item.(map[string]any); ok {
				items = append(items, m)
			}
		}
	}
	out := json.NewEncoder(os.Stdout)
	for _, item := range items {
		result, err := fn(item)
		if err != nil {
			return err
		}
		meta, _ := item["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		kind, _ := item["kind"].(string)
		if err := out.Encode(named{Kind: kind, Name: name, Result: result}); err != nil {
			return err
		}
	}
	return nil
}

func healthOf(root string, obj map[string]any) (any, error) {
	return scriptResult(root, obj, "health.lua", func(o map[string]any, s string) (any, error) { return RunHealth(o, s) })
}

func scriptResult(root string, obj map[string]any, rel string, run func(map[string]any, string) (any, error)) (any, error) {
	dir, err := ScriptDir(root, obj)
	if err != nil {
		return nil, err
	}
	script, err := readScript(filepath.Join(dir, rel))
	if err != nil {
		return nil, err
	}
	return run(obj, script)
}
