package store

import (
	"context"
	"database/sql"
	"sync"
)

// reader runs the store's reads with each query prepared once: database/sql
// then keeps the statement prepared on every connection that runs it.
type reader struct {
	db    *sql.DB
	stmts *readStatements
}

// readStatements are the prepared reads, by query. The queries are the
// code's own constants, so the map stays small; maxReadStatements bounds
// it all the same.
type readStatements struct {
	mu      sync.Mutex
	byQuery map[string]*sql.Stmt
}

const maxReadStatements = 256

func (r reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if stmt := r.statement(ctx, query); stmt != nil {
		return stmt.QueryContext(ctx, args...)
	}
	return r.db.QueryContext(ctx, query, args...)
}

func (r reader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if stmt := r.statement(ctx, query); stmt != nil {
		return stmt.QueryRowContext(ctx, args...)
	}
	return r.db.QueryRowContext(ctx, query, args...)
}

// statement is query prepared, or nil when it cannot be (the query then
// runs unprepared and reports its own error) or the cache is full.
func (r reader) statement(ctx context.Context, query string) *sql.Stmt {
	r.stmts.mu.Lock()
	defer r.stmts.mu.Unlock()
	if stmt, ok := r.stmts.byQuery[query]; ok {
		return stmt
	}
	if len(r.stmts.byQuery) >= maxReadStatements {
		return nil
	}
	stmt, err := r.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	r.stmts.byQuery[query] = stmt
	return stmt
}

// close closes the prepared reads.
func (r reader) close() {
	r.stmts.mu.Lock()
	defer r.stmts.mu.Unlock()
	for q, stmt := range r.stmts.byQuery {
		stmt.Close()
		delete(r.stmts.byQuery, q)
	}
}
