package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// introspectionOff refuses, before execution, operations that ask for
// __schema or __type when introspection is disabled. Left to gqlgen, each
// field would fail while executing with an error that carries no code: an
// INTERNAL_SERVER_ERROR and an error-log line for anyone who asks.
type introspectionOff struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = introspectionOff{}

func (introspectionOff) ExtensionName() string                   { return "IntrospectionOff" }
func (introspectionOff) Validate(graphql.ExecutableSchema) error { return nil }

func (introspectionOff) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil {
		return nil
	}
	if f := findIntrospection(opCtx.Operation.SelectionSet, map[string]bool{}); f != nil {
		err := gqlerror.ErrorPosf(f.Position, "introspection is disabled")
		errcode.Set(err, errcode.ValidationFailed)
		return err
	}
	return nil
}

// findIntrospection returns the first __schema or __type field in set,
// looking into each fragment once.
func findIntrospection(set ast.SelectionSet, seen map[string]bool) *ast.Field {
	for _, sel := range set {
		var inner ast.SelectionSet
		switch sel := sel.(type) {
		case *ast.Field:
			if sel.Name == "__schema" || sel.Name == "__type" {
				return sel
			}
			inner = sel.SelectionSet
		case *ast.InlineFragment:
			inner = sel.SelectionSet
		case *ast.FragmentSpread:
			if seen[sel.Name] || sel.Definition == nil {
				continue
			}
			seen[sel.Name] = true
			inner = sel.Definition.SelectionSet
		}
		if f := findIntrospection(inner, seen); f != nil {
			return f
		}
	}
	return nil
}
