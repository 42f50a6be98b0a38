package deploy

import (
	"slices"
	"time"
)

// Result statuses, as Drydock's ActionResult names them.
const (
	Incomplete     = "incomplete"
	Success        = "success"
	PartialSuccess = "partial_success"
	Failure        = "failure"
	Unreported     = "unreported"
)

// Result is how an action went: per node, and in messages.
type Result struct {
	Status    string    `json:"status"`
	Successes []string  `json:"successes,omitempty"`
	Failures  []string  `json:"failures,omitempty"`
	Messages  []Message `json:"messages,omitempty"`
	// Subtasks are the node tasks of an action over nodes.
	Subtasks []string `json:"subtasks,omitempty"`
	// Submitted counts the nodes handed to subtasks (or refused one).
	Submitted int `json:"submitted,omitempty"`
	// Nodes are the nodes the filter selected.
	Nodes []string `json:"nodes,omitempty"`
	// Since is when the current wait began (netboot, boot actions).
	Since time.Time `json:"since,omitzero"`
}

// Message is one line of an action's story.
type Message struct {
	Message     string    `json:"message"`
	Error       bool      `json:"error"`
	ContextType string    `json:"context_type,omitempty"` // node | task | site
	Context     string    `json:"context,omitempty"`
	At          time.Time `json:"ts"`
}

func (r *Result) say(contextType, context string, isError bool, msg string) {
	r.Messages = append(r.Messages, Message{Message: msg, Error: isError, ContextType: contextType, Context: context, At: time.Now().UTC()})
}

// succeed and fail record a node's outcome; a success after a failure, or
// the reverse, makes the whole partial_success, as in Drydock.
func (r *Result) succeed(node string) {
	if node != "" && !slices.Contains(r.Successes, node) {
		r.Successes = append(r.Successes, node)
	}
	r.Status = merge(r.Status, Success)
}

func (r *Result) fail(node string) {
	if node != "" && !slices.Contains(r.Failures, node) {
		r.Failures = append(r.Failures, node)
	}
	r.Status = merge(r.Status, Failure)
}

func merge(cur, next string) string {
	switch {
	case cur == "" || cur == Incomplete || cur == next:
		return next
	case cur == PartialSuccess:
		return cur
	default:
		return PartialSuccess
	}
}

// Errors counts the error messages.
func (r Result) Errors() int {
	n := 0
	for _, m := range r.Messages {
		if m.Error {
			n++
		}
	}
	return n
}
