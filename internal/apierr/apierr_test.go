package apierr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/qchat/qchat/internal/apierr"
)

func TestKindsMatchErrorsOfTheirCode(t *testing.T) {
	kinds := []*apierr.Kind{apierr.ErrNotFound, apierr.ErrForbidden, apierr.ErrConflict, apierr.ErrInvalid, apierr.ErrUnauthenticated}
	for _, k := range kinds {
		t.Run(k.Code(), func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", &apierr.Error{Code: k.Code(), Message: "m"})
			for _, other := range kinds {
				if got, want := errors.Is(err, other), other == k; got != want {
					t.Errorf("errors.Is(%s error, %s) = %v, want %v", k.Code(), other.Code(), got, want)
				}
			}
			e, ok := apierr.From(err)
			if !ok || e.Code != k.Code() || e.Message != "m" {
				t.Errorf("From = %+v, %v", e, ok)
			}
			e, ok = apierr.From(fmt.Errorf("ctx: %w", k))
			if !ok || e.Code != k.Code() || e.Message != k.Error() {
				t.Errorf("From(kind) = %+v, %v", e, ok)
			}
		})
	}
	if _, ok := apierr.From(errors.New("driver")); ok {
		t.Error("an unknown error has no contract code")
	}
}
