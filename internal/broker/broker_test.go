package broker

import (
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/qchat/qchat/models"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBatchAccessors(t *testing.T) {
	r1, r2, r3 := &models.ReadReceipt{MessageID: "1"}, &models.ReadReceipt{MessageID: "2"}, &models.ReadReceipt{MessageID: "3"}
	for _, tc := range []struct {
		name string
		ev   *Event
		want []*models.ReadReceipt
	}{
		{"none", &Event{Kind: Receipt}, nil},
		{"one", &Event{Kind: Receipt, Receipt: r1}, []*models.ReadReceipt{r1}},
		{"batch", &Event{Kind: Receipt, Receipt: r1, Receipts: []*models.ReadReceipt{r2, r3}}, []*models.ReadReceipt{r1, r2, r3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Collect(tc.ev.AllReceipts())
			if !slices.Equal(got, tc.want) {
				t.Fatalf("AllReceipts = %v, want %v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		inv  Invalidation
		want []string
	}{
		{Invalidation{What: "room", Key: "a"}, []string{"a"}},
		{Invalidation{What: "member", Key: "a", More: []string{"b", "c"}}, []string{"a", "b", "c"}},
	} {
		if got := tc.inv.Keys(); !slices.Equal(got, tc.want) {
			t.Errorf("Keys(%+v) = %v, want %v", tc.inv, got, tc.want)
		}
	}
}
