package testenv

import (
	"bytes"
	"strings"
	"testing"
)

// Several skips of one service print one line; another service gets its own.
func TestOneLinePerService(t *testing.T) {
	var buf bytes.Buffer
	Stderr = &buf
	t.Setenv("CI", "")
	t.Setenv("QCHAT_TEST_NOTHING_URL", "")
	t.Setenv("QCHAT_TEST_OTHER_URL", "")
	for range 3 {
		t.Run("a", func(t *testing.T) { Service(t, "Nothing", "QCHAT_TEST_NOTHING_URL"); t.Error("not skipped") })
	}
	t.Run("b", func(t *testing.T) { Service(t, "Other", "QCHAT_TEST_OTHER_URL") })
	want := "qchat: Nothing tests skipped: QCHAT_TEST_NOTHING_URL is not set\n" +
		"qchat: Other tests skipped: QCHAT_TEST_OTHER_URL is not set\n"
	if buf.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", buf.String(), want)
	}
	t.Setenv("QCHAT_TEST_NOTHING_URL", "x://set")
	if u := Service(t, "Nothing", "QCHAT_TEST_NOTHING_URL"); u != "x://set" || strings.Count(buf.String(), "\n") != 2 {
		t.Errorf("Service with the variable set = %q", u)
	}
}
