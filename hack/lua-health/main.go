// Command lua-health runs an Argo CD health check (health.lua) on Kubernetes
// objects with gopher-lua, the way Argo CD does: the object is the global `obj`,
// only the base, package and table libraries are open, and the script returns a
// table with `status` and `message`.
//
//	lua-health health.lua OBJECT.yaml...   one JSON line {"status": ..., "message": ...} per object
//	lua-health health.lua -                the object (YAML or JSON) from standard input
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// toLua converts a decoded JSON value as Argo CD's decodeValue does: objects and
// arrays become tables, numbers LNumber.
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
		t := l.NewTable()
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.NewTable()
		for key, item := range v {
			t.RawSetString(key, toLua(l, item))
		}
		return t
	default:
		panic(fmt.Sprintf("unexpected value %T", value))
	}
}

func check(script string, object []byte) (healthStatus, error) {
	var decoded map[string]any
	if err := yaml.Unmarshal(object, &decoded); err != nil {
		return healthStatus{}, fmt.Errorf("object: %w", err)
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return healthStatus{}, err
		}
	}
	l.SetGlobal("obj", toLua(l, decoded))
	if err := l.DoString(script); err != nil {
		return healthStatus{}, err
	}
	result, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return healthStatus{}, fmt.Errorf("health.lua returned %s, not a table", l.Get(-1).Type())
	}
	return healthStatus{
		Status:  lua.LVAsString(result.RawGetString("status")),
		Message: lua.LVAsString(result.RawGetString("message")),
	}, nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: lua-health health.lua OBJECT.yaml... (- for standard input)")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	for _, path := range os.Args[2:] {
		var object []byte
		if path == "-" {
			object, err = io.ReadAll(os.Stdin)
		} else {
			object, err = os.ReadFile(path)
		}
		if err == nil {
			var status healthStatus
			if status, err = check(string(script), object); err == nil {
				err = out.Encode(status)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(1)
		}
	}
}
