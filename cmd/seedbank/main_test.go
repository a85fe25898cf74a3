package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/node"
)

// Every option of node.Config is documented by serve --help with its env var.
func TestServeHelpDocumentsEveryOption(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	help := errb.String()
	typ := reflect.TypeOf(node.Config{})
	for i := 0; i < typ.NumField(); i++ {
		name := typ.Field(i).Tag.Get("flag")
		if name == "" {
			continue
		}
		env := "SEEDBANK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if !strings.Contains(help, "-"+name) || !strings.Contains(help, env) {
			t.Errorf("help lacks -%s or %s", name, env)
		}
	}
	for _, want := range []string{"127.0.0.1:8080", "./data", "--config"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestBadInvocations(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"serve", "--http", "nope"}, {"serve", "--no-such-flag"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code == 0 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "seedbank ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}
