import CFuzz
import Record
import Replay
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// The harnesses by name; `VFIOTRACE_FUZZ_TARGET` picks one (scripts/fuzz
/// sets it). Each is an entry point of the library it fuzzes, so the tests
/// that replay found inputs (Tests/FuzzInputs) call the same code.
let harnesses: [String: @Sendable ([UInt8]) -> Void] = [
    "trace": TraceFuzzing.binaryTrace,
    "text": TraceFuzzing.text,
    "replay": ReplayFuzzing.replay,
    "ringbuffer": RecordFuzzing.ringBufferPage,
    "format": RecordFuzzing.traceEventFormat,
    "btf": RecordFuzzing.btf,
    "ioctl": RecordFuzzing.ioctl,
]

let chosen: @Sendable ([UInt8]) -> Void = {
    let name = getenv("VFIOTRACE_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let h = harnesses[name] else {
        let known = harnesses.keys.sorted().joined(separator: ", ")
        let message = Array("vfiotrace-fuzz: set VFIOTRACE_FUZZ_TARGET to one of: \(known)\n".utf8)
        _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(2)
    }
    return h
}()

/// One input, for libFuzzer.
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    chosen(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// The executable's entry point (SwiftPM links `<module>_main` as main):
/// libFuzzer's driver, with the harness as its callback.
@_cdecl("vfiotrace_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    _ = chosen
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
}
