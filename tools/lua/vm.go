package main

// The Lua environment Argo CD gives a health or action script from argocd-cm: no
// standard libraries except package, base and table; `require("os")` yields a module
// with only time and date (there is no global os); the object as the global `obj`; a
// one-second deadline. Results leave the VM as
// JSON through layeh.com/gopher-json, the encoder Argo CD uses, so empty tables come
// out as [] exactly as they do there.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

// Clock is what os.time and os.date read; tests pin it so action outputs are stable.
var Clock = func() time.Time { return time.Now() }

// runScript executes script with obj as the global `obj` and returns the script's
// return value encoded as JSON.
func runScript(obj map[string]any, script string) ([]byte, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for name, open := range map[string]lua.LGFunction{
		lua.LoadLibName: lua.OpenPackage,
		lua.BaseLibName: lua.OpenBase,
		lua.TabLibName:  lua.OpenTable,
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(open), Protect: true}, lua.LString(name)); err != nil {
			return nil, fmt.Errorf("opening %s: %w", name, err)
		}
	}
	l.PreloadModule(lua.OsLibName, loadSafeOs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("script returned %s, not a table", ret.Type())
	}
	return luajson.Encode(ret)
}

// toLua converts decoded JSON into Lua values the way Argo CD hands objects to scripts:
// numbers become Lua numbers, lists become sequences, maps become tables.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetString(key, toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

func loadSafeOs(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), map[string]lua.LGFunction{"time": osTime, "date": osDate}))
	return 1
}

func osTime(l *lua.LState) int {
	l.Push(lua.LNumber(Clock().Unix()))
	return 1
}

// osDate supports the strftime conversions our scripts use; "!" selects UTC.
func osDate(l *lua.LState) int {
	format := l.OptString(1, "%c")
	t := Clock()
	if l.GetTop() >= 2 {
		t = time.Unix(l.CheckInt64(2), 0)
	}
	if strings.HasPrefix(format, "!") {
		t = t.UTC()
		format = format[1:]
	}
	layouts := map[byte]string{
		'Y': "2006", 'm': "01", 'd': "02", 'H': "15", 'M': "04", 'S': "05",
		'F': "2006-01-02", 'T': "15:04:05", 'X': "15:04:05", 'z': "-0700", 'Z': "MST",
		'c': "Mon Jan  2 15:04:05 2006",
	}
	var out strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i == len(format)-1 {
			out.WriteByte(format[i])
			continue
		}
		i++
		if layout, ok := layouts[format[i]]; ok {
			out.WriteString(t.Format(layout))
		} else {
			out.WriteByte('%')
			out.WriteByte(format[i])
		}
	}
	l.Push(lua.LString(out.String()))
	return 1
}

// Health is what a health script returns.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

var validHealth = map[string]bool{
	"Healthy": true, "Progressing": true, "Suspended": true, "Degraded": true,
	"Missing": true, "Unknown": true,
}

// RunHealth evaluates a health script; an invalid status becomes Unknown, as in Argo CD.
func RunHealth(obj map[string]any, script string) (Health, error) {
	out, err := runScript(obj, script)
	if err != nil {
		return Health{}, err
	}
	var h Health
	if err := json.Unmarshal(out, &h); err != nil {
		return Health{}, fmt.Errorf("health result %s: %w", out, err)
	}
	if !validHealth[h.Status] {
		return Health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return h, nil
}

// Action is one entry of a discovery script's result.
type Action struct {
	Name        string `json:"name"`
	Disabled    bool   `json:"disabled"`
	DisplayName string `json:"displayName,omitempty"`
}

// RunDiscovery evaluates a discovery script into the list of offered actions.
func RunDiscovery(obj map[string]any, script string) ([]Action, error) {
	out, err := runScript(obj, script)
	if err != nil {
		return nil, err
	}
	if string(out) == "[]" {
		return []Action{}, nil
	}
	var byName map[string]struct {
		Disabled    bool   `json:"disabled"`
		DisplayName string `json:"displayName"`
	}
	if err := json.Unmarshal(out, &byName); err != nil {
		return nil, fmt.Errorf("discovery result %s: %w", out, err)
	}
	actions := make([]Action, 0, len(byName))
	for name, a := range byName {
		actions = append(actions, Action{Name: name, Disabled: a.Disabled, DisplayName: a.DisplayName})
	}
	return actions, nil
}

// RunAction evaluates an action script that returns the modified object. Where the
// input had a map and the output an empty list (an emptied Lua table), the input's map
// is kept, as Argo CD does before it computes the patch.
func RunAction(obj map[string]any, script string) (map[string]any, error) {
	out, err := runScript(obj, script)
	if err != nil {
		return nil, err
	}
	if len(out) > 0 && out[0] == '[' {
		return nil, fmt.Errorf("action returned a list of impacted resources; only object results are supported")
	}
	var result map[string]any
	if err := json.Unmarshal(out, &result); err != nil {
		return nil, fmt.Errorf("action result %s: %w", out, err)
	}
	return keepEmptiedMaps(result, obj), nil
}

func keepEmptiedMaps(after, before map[string]any) map[string]any {
	for key, old := range before {
		switch now := after[key].(type) {
		case map[string]any:
			if oldMap, ok := old.(map[string]any); ok {
				after[key] = keepEmptiedMaps(now, oldMap)
			}
		case []any:
			if oldMap, ok := old.(map[string]any); ok && len(now) == 0 {
				after[key] = oldMap
			}
		}
	}
	return after
}
