/// Entry points for the fuzz harnesses (`scripts/fuzz`, `Fuzz/`) and for
/// the tests that replay the inputs fuzzing found (`Tests/FuzzInputs/`).
/// Each takes any bytes and must return: a trap, a hang or unbounded
/// memory here is a bug in the reader, whatever the bytes.
public enum TraceFuzzing {
    /// The binary reader as `verify`, `cat` and `cat --from` use it: the
    /// header, the frame scanner, the record decoder and the seek index,
    /// with every decoded event printed in the text form.
    public static func binaryTrace(_ bytes: [UInt8]) {
        let file = TraceFile(bytes: bytes, name: "fuzz.vft")
        guard let reader = try? TraceReader(file: file) else { return }
        var printer = TextPrinter()
        _ = TextPrinter.headerLines(reader.header)
        _ = try? TraceScan.run(reader, eachEvent: { e in _ = printer.line(for: e) })
        if var from = try? reader.events(from: 2) {
            while let e = try? from.next() { _ = printer.line(for: e) }
        }
    }

    /// The text parser, and the printer on what it parsed (the text form
    /// is what `cat | compile` round-trips).
    public static func text(_ bytes: [UInt8]) {
        guard let s = String(validating: bytes, as: UTF8.self),
              let (header, events) = try? TextParser.parse(s) else { return }
        var printer = TextPrinter()
        _ = TextPrinter.headerLines(header)
        for e in events { _ = printer.line(for: e) }
    }
}
