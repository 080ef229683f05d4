package metrics_test

import "github.com/qchat/qchat/internal/broker"

// The in-memory broker's counters fit RegisterBrokerStats as they are.
var _ func() (delivered, dropped uint64) = (*broker.Memory)(nil).Stats
