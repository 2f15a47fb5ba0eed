package serdejson

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"":                  `""`,
		`q"b\`:              `"q\"b\\"`,
		"<tag>&\u2028":      "\"<tag>&\u2028\"",
		"tab\tnl\n\x00\x1f": `"tab\tnl\n\u0000\u001f"`,
		"bad \xff":          `"bad \ufffd"`,
		"ünïcode":           `"ünïcode"`,
	} {
		if got := string(AppendString(nil, in)); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzString: a quoted string is valid JSON that reads back as the string encoding/json
// would give (invalid UTF-8 bytes as U+FFFD), and escapes no more than '"', '\\' and
// control characters.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\`, "<tag>&\u2028\u2029", "tab\tnl\n\x00\x1f\x7f", "bad \xff\xfe utf8", "ünïcode"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q quoted as %s: %v", s, out, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q quoted as %s reads back as %q, want %q", s, out, got, want)
		}
		if utf8.ValidString(s) && !strings.ContainsAny(s, "\"\\") && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) && string(out) != `"`+s+`"` {
			t.Fatalf("%q quoted as %s: escaped more than needed", s, out)
		}
	})
}
