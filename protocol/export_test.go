package protocol

import "fmt"

// Exported for the tests only: the production code reads frames from a
// stream with Reader.Next.

// ParseFrame decodes exactly one whole frame held in b, as Reader.Next would.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) < HeaderSize {
		return Frame{}, fmt.Errorf("%w: %d bytes", ErrTruncated, len(b))
	}
	f, n, err := parseHeader(b[:HeaderSize])
	if err != nil {
		return Frame{}, err
	}
	if len(b)-HeaderSize != n {
		if len(b)-HeaderSize < n {
			return Frame{}, fmt.Errorf("%w: %d of %d payload bytes", ErrTruncated, len(b)-HeaderSize, n)
		}
		return Frame{}, fmt.Errorf("%w: %d bytes after the frame", ErrMalformed, len(b)-HeaderSize-n)
	}
	f.Payload = b[HeaderSize:]
	return f, nil
}
