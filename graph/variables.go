package graph

import (
	"context"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// gqlparser coerces and validates variables (validator.VariableValues,
// called by gqlgen's executor.CreateOperationContext) by reflection: for
// every field of every input object it lists the map's keys, looks each
// field up twice, grows the error path and writes the value back into the
// map. A sendMessage's keys list made that ~37 µs per message of 10
// recipients and ~10 times that for 100, though its values are plain
// strings that the check leaves as they are.
//
// Variables that checkVariable finds valid, and that the coercion would
// leave unchanged, are therefore checked here instead: variableStandIns
// (an OperationParameterMutator, the last one, right before gqlgen parses
// and validates) hands gqlparser a small valid stand-in for each of them,
// and variableRestore (the first OperationContextMutator, right after
// gqlparser) puts the client's values in the operation's variables. A
// variable checkVariable has any doubt about (anything invalid, a number, an
// enum, a list given as a single value, a missing field with a default) is
// left to gqlparser as it came, so every error and every coercion is its
// own. Only the POST and websocket transports (ours) offer the slot that
// carries the values from one half to the other; a query not yet in the
// parsed-document cache (its first use) takes the normal path too.
// TestVariableStandIns holds both paths to the same answers.

// standInOps counts the operations whose variables were checked here.
var standInOps atomic.Int64

// VariableStandIns is how many operations have had variables checked
// without gqlparser since the process started.
func VariableStandIns() int64 { return standInOps.Load() }

// variableSlot carries the variables that variableStandIns replaced to
// variableRestore, within one CreateOperationContext.
type variableSlot struct {
	vars     map[string]any // the client's variables as sent
	replaced []string       // the names given stand-ins
}

type variableSlotKey struct{}

// createOperationContext is exec.CreateOperationContext with the slot that
// lets valid variables skip gqlparser's reflective check. params.Variables
// is the client's map again when it returns.
func createOperationContext(ctx context.Context, exec graphql.GraphExecutor, params *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	slot := &variableSlot{}
	rc, errs := exec.CreateOperationContext(context.WithValue(ctx, variableSlotKey{}, slot), params)
	if slot.vars != nil {
		params.Variables = slot.vars
	}
	return rc, errs
}

// variableStandIns is the first half (see above); it must be the last
// OperationParameterMutator, after APQ has put a persisted query in place.
type variableStandIns struct {
	schema *ast.Schema
	cache  graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = variableStandIns{}

func (variableStandIns) ExtensionName() string                   { return "VariableStandIns" }
func (variableStandIns) Validate(graphql.ExecutableSchema) error { return nil }

func (v variableStandIns) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	slot, _ := ctx.Value(variableSlotKey{}).(*variableSlot)
	if slot == nil || len(params.Variables) == 0 || params.Query == "" {
		return nil
	}
	// Only a document gqlgen validated before: it takes it from this cache.
	doc, ok := v.cache.Get(ctx, params.Query)
	if !ok {
		return nil
	}
	op := doc.Operations.ForName(params.OperationName)
	if op == nil {
		return nil
	}
	var standIns map[string]any
	for _, def := range op.VariableDefinitions {
		val, ok := params.Variables[def.Variable]
		if !ok || !v.worthStandIn(def.Type) || !v.valid(def.Type, val, 0) {
			continue
		}
		standIn, ok := v.standIn(def.Type, 0)
		if !ok {
			continue
		}
		if standIns == nil {
			standIns = make(map[string]any, len(params.Variables))
			for k, val := range params.Variables {
				standIns[k] = val
			}
		}
		standIns[def.Variable] = standIn
		slot.replaced = append(slot.replaced, def.Variable)
	}
	if standIns != nil {
		slot.vars = params.Variables
		params.Variables = standIns
		standInOps.Add(1)
	}
	return nil
}

// worthStandIn: a variable whose check walks something (a list, an input
// object); a scalar's costs gqlparser next to nothing.
func (v variableStandIns) worthStandIn(t *ast.Type) bool {
	if t.Elem != nil {
		return true
	}
	def := v.schema.Types[t.NamedType]
	return def != nil && def.Kind == ast.InputObject
}

// maxStandInDepth bounds the nesting checked here; deeper values go to
// gqlparser.
const maxStandInDepth = 16

// valid reports whether gqlparser's validator.VariableValues accepts val as
// a value of type t and leaves it as it is. It answers false whenever that
// is not certain: false only means that gqlparser checks it.
func (v variableStandIns) valid(t *ast.Type, val any, depth int) bool {
	if depth > maxStandInDepth {
		return false
	}
	if val == nil {
		return !t.NonNull
	}
	if t.Elem != nil {
		list, ok := val.([]any) // a single value would be coerced into a list
		if !ok {
			return false
		}
		for _, e := range list {
			if !v.valid(t.Elem, e, depth+1) {
				return false
			}
		}
		return true
	}
	def := v.schema.Types[t.NamedType]
	if def == nil {
		return false
	}
	switch def.Kind {
	case ast.Scalar:
		switch t.NamedType {
		case "String", "ID":
			_, ok := val.(string) // a number as an ID is coerced
			return ok
		case "Boolean":
			_, ok := val.(bool)
			return ok
		case "Int", "Float":
			return false // numbers are converted
		}
		return true // custom scalars: gqlparser takes any value as it is
	case ast.InputObject:
		m, ok := val.(map[string]any)
		if !ok {
			return false
		}
		for k := range m {
			if k != "__typename" && def.Fields.ForName(k) == nil {
				return false
			}
		}
		for _, f := range def.Fields {
			fv, ok := m[f.Name]
			if !ok {
				if f.Type.NonNull {
					return false // an error, or a default gqlparser looks at
				}
				continue
			}
			if !v.valid(f.Type, fv, depth+1) {
				return false
			}
		}
		return true
	}
	return false // enums are matched without regard to case: gqlparser's
}

// standIn returns a fresh value of type t that gqlparser accepts at little
// cost: null where t allows it, an empty list, an input object with only its
// required fields. It is fresh because gqlparser writes into the maps it
// checks.
func (v variableStandIns) standIn(t *ast.Type, depth int) (any, bool) {
	if depth > maxStandInDepth {
		return nil, false
	}
	if !t.NonNull {
		return nil, true
	}
	if t.Elem != nil {
		return []any{}, true
	}
	def := v.schema.Types[t.NamedType]
	if def == nil {
		return nil, false
	}
	switch def.Kind {
	case ast.Scalar:
		switch t.NamedType {
		case "Int":
			return int64(0), true
		case "Float":
			return float64(0), true
		case "Boolean":
			return false, true
		}
		return "", true
	case ast.Enum:
		if len(def.EnumValues) == 0 {
			return nil, false
		}
		return def.EnumValues[0].Name, true
	case ast.InputObject:
		m := make(map[string]any, len(def.Fields))
		for _, f := range def.Fields {
			if !f.Type.NonNull || f.DefaultValue != nil {
				continue
			}
			fv, ok := v.standIn(f.Type, depth+1)
			if !ok {
				return nil, false
			}
			m[f.Name] = fv
		}
		return m, true
	}
	return nil, false
}

// variableRestore is the second half (see above); it must be the first
// OperationContextMutator.
type variableRestore struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = variableRestore{}

func (variableRestore) ExtensionName() string                   { return "VariableRestore" }
func (variableRestore) Validate(graphql.ExecutableSchema) error { return nil }

func (variableRestore) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	slot, _ := ctx.Value(variableSlotKey{}).(*variableSlot)
	if slot == nil || slot.vars == nil {
		return nil
	}
	for _, name := range slot.replaced {
		opCtx.Variables[name] = slot.vars[name]
	}
	return nil
}
