//go:build !wasip1

package sdk

import "github.com/metronome-xmpp/metronome/sdk/abi"

// Outside wasip1 there is no host: every host function fails with
// ErrState, so plugin code compiles, vets and unit-tests anywhere.

func hostHook(string, int32, uint32) int32              { return abi.ErrState }
func hostAddFeature(string, uint32) int32               { return abi.ErrState }
func hostAddIdentity(string, string, string) int32      { return abi.ErrState }
func hostFail(string)                                   {}
func hostLog(int32, string)                             {}
func hostSend([]byte) int32                             { return abi.ErrState }
func hostReply([]byte) int32                            { return abi.ErrState }
func hostReplace([]byte) int32                          { return abi.ErrState }
func hostSetError(string, string)                       {}
func hostStoreGet(string, string, string) int32         { return abi.ErrState }
func hostStoreSet(string, string, string, []byte) int32 { return abi.ErrState }
func hostStoreDelete(string, string, string) int32      { return abi.ErrState }
func hostHTTP([]byte) int32                             { return abi.ErrState }
func hostResult([]byte) int32                           { return abi.ErrState }
func hostFormAddField([]byte) int32                     { return abi.ErrState }
func hostFormGet(string) int32                          { return abi.ErrState }
func hostFormSet(string, []byte) int32                  { return abi.ErrState }
func hostRoomConfig(string, string) int32               { return abi.ErrState }
