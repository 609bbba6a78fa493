package main

// Test cases in Argo CD's own layout for built-in checks:
//   <root>/<group>/<Kind>/health.lua + health_test.yaml + testdata/
//   <root>/<group>/<Kind>/actions/discovery.lua, <action>/action.lua, action_test.yaml

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Result is the outcome of one test case.
type Result struct {
	Suite  string `json:"suite"`
	Case   string `json:"case"`
	OK     bool   `json:"ok"`
	Got    any    `json:"got,omitempty"`
	Want   any    `json:"want,omitempty"`
	Detail string `json:"detail,omitempty"`
}

type healthTests struct {
	Tests []struct {
		HealthStatus Health `json:"healthStatus"`
		InputPath    string `json:"inputPath"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string   `json:"inputPath"`
		Result    []Action `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action             string `json:"action"`
		InputPath          string `json:"inputPath"`
		ExpectedOutputPath string `json:"expectedOutputPath"`
	} `json:"actionTests"`
}

// readYAML decodes a YAML (or JSON) file into v through JSON, as Kubernetes tools do.
func readYAML(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	data, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return json.Unmarshal(data, v)
}

func readObject(path string) (map[string]any, error) {
	var obj map[string]any
	if err := readYAML(path, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, fmt.Errorf("%s: empty document", path)
	}
	return obj, nil
}

func readScript(path string) (string, error) {
	raw, err := os.ReadFile(path)
	return string(raw), err
}

// Check runs every health_test.yaml and action_test.yaml under root.
func Check(root string) ([]Result, error) {
	var results []Result
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		suite, _ := filepath.Rel(root, dir)
		switch d.Name() {
		case "health_test.yaml":
			results = append(results, checkHealth(dir, suite)...)
		case "action_test.yaml":
			results = append(results, checkActions(dir, suite)...)
		}
		return nil
	})
	return results, err
}

func failed(suite, name string, err error) Result {
	return Result{Suite: suite, Case: name, Detail: err.Error()}
}

func checkHealth(dir, suite string) []Result {
	var spec healthTests
	if err := readYAML(filepath.Join(dir, "health_test.yaml"), &spec); err != nil {
		return []Result{failed(suite, "health_test.yaml", err)}
	}
	script, err := readScript(filepath.Join(dir, "health.lua"))
	if err != nil {
		return []Result{failed(suite, "health.lua", err)}
	}
	results := make([]Result, 0, len(spec.Tests))
	for _, tc := range spec.Tests {
		name := "health/" + tc.InputPath
		obj, err := readObject(filepath.Join(dir, tc.InputPath))
		if err != nil {
			results = append(results, failed(suite, name, err))
			continue
		}
		got, err := RunHealth(obj, script)
		if err != nil {
			results = append(results, failed(suite, name, err))
			continue
		}
		results = append(results, Result{Suite: suite, Case: name, OK: got == tc.HealthStatus, Got: got, Want: tc.HealthStatus})
	}
	return results
}

func checkActions(dir, suite string) []Result {
	var spec actionTests
	if err := readYAML(filepath.Join(dir, "action_test.yaml"), &spec); err != nil {
		return []Result{failed(suite, "action_test.yaml", err)}
	}
	var results []Result
	discovery, err := readScript(filepath.Join(dir, "discovery.lua"))
	if err != nil {
		return []Result{failed(suite, "discovery.lua", err)}
	}
	for _, tc := range spec.DiscoveryTests {
		name := "discovery/" + tc.InputPath
		obj, err := readObject(filepath.Join(dir, tc.InputPath))
		if err != nil {
			results = append(results, failed(suite, name, err))
			continue
		}
		got, err := RunDiscovery(obj, discovery)
		if err != nil {
			results = append(results, failed(suite, name, err))
			continue
		}
		want := append([]Action(nil), tc.Result...)
		sortActions(got)
		sortActions(want)
		results = append(results, Result{Suite: suite, Case: name, OK: reflect.DeepEqual(got, want), Got: got, Want: want})
	}
	for _, tc := range spec.ActionTests {
		name := "actions/" + tc.Action + "/" + tc.InputPath
		results = append(results, checkAction(dir, suite, name, tc.Action, tc.InputPath, tc.ExpectedOutputPath))
	}
	return results
}

func checkAction(dir, suite, name, action, input, expected string) Result {
	script, err := readScript(filepath.Join(dir, action, "action.lua"))
	if err != nil {
		return failed(suite, name, err)
	}
	obj, err := readObject(filepath.Join(dir, input))
	if err != nil {
		return failed(suite, name, err)
	}
	want, err := readObject(filepath.Join(dir, expected))
	if err != nil {
		return failed(suite, name, err)
	}
	got, err := RunAction(obj, script)
	if err != nil {
		return failed(suite, name, err)
	}
	ok := reflect.DeepEqual(got, want)
	r := Result{Suite: suite, Case: name, OK: ok}
	if !ok {
		r.Got, r.Want = got, want
	}
	return r
}

func sortActions(actions []Action) {
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
}

// ScriptDir is where the scripts of an object's group and kind live under root.
func ScriptDir(root string, obj map[string]any) (string, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if kind == "" {
		return "", fmt.Errorf("object has no kind")
	}
	group := ""
	if i := strings.Index(apiVersion, "/"); i >= 0 {
		group = apiVersion[:i]
	}
	if group == "" {
		return filepath.Join(root, "_", kind), nil
	}
	return filepath.Join(root, group, kind), nil
}
