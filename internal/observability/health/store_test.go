package health_test

import (
	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/observability/health"
)

// The store the server runs with is what the probes need.
var _ health.DB = (*db.Store)(nil)
