package event

// Key gives typed access to Event.Data for a non-stanza event: the event
// name and its payload type travel together, so a handler cannot read the
// payload as the wrong type.
type Key[T any] struct{ Name string }

// NewKey returns a typed key for event name.
func NewKey[T any](name string) Key[T] { return Key[T]{Name: name} }

// Data returns the event's payload as T (zero and false if it is not a T).
func (k Key[T]) Data(ev *Event) (T, bool) {
	v, ok := ev.Data.(T)
	return v, ok
}

// Event builds an event for this key carrying data.
func (k Key[T]) Event(host string, data T) *Event {
	return &Event{Name: k.Name, Host: host, Data: data}
}
