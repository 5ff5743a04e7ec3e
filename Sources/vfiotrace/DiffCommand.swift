import ArgumentParser
import Replay
import Trace

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare the outcomes of two traces event by event.",
        discussion: """
        For the same workload recorded on two kernels, or a recording against a replay's
        --output. Events are paired by position; where the calls themselves differ the
        workloads have drifted apart and that is reported. Outcome fields the first trace
        does not state are not compared. The migration capability's bytes 12..15 are
        compared only when both kernels zero them (6.6+). Both inputs are streamed: memory
        does not grow with their length.

        Examples:
          vfiotrace diff recorded-6.1.vft recorded-6.12.vft
          vfiotrace replay host.vft --profile 5.8 -o r.vft; vfiotrace diff host.vft r.vft

        Exit codes: 0 same, 1 divergent, 2 trouble.
        """
    )

    @Argument(help: "The expected trace or scenario.", completion: .file(extensions: ["vft", "vfs"]))
    var a: String

    @Argument(help: "The trace or scenario compared with it.", completion: .file(extensions: ["vft", "vfs"]))
    var b: String

    @OptionGroup var comparison: ComparisonArguments

    func run() throws {
        let ia = try openInput(a)
        let ib = try openInput(b)
        var checker = OutcomeChecker(options: comparison.options, ignored: OutcomeField.undefined(comparing: ia.header, ib.header))
        var report = DivergenceReport(maxShown: comparison.maxDivergences, options: comparison.options)
        var ea = try inputEvents(ia), eb = try inputEvents(ib)
        var onlyA = 0, onlyB = 0
        var bEnded = false
        while let x = try nextEvent(&ea) {
            if !bEnded, let y = try nextEvent(&eb) {
                report.add(checker.check(expected: x, actual: y))
            } else {
                bEnded = true
                onlyA += 1
            }
        }
        if !bEnded { while try nextEvent(&eb) != nil { onlyB += 1 } }
        try checkProblems(ea)
        try checkProblems(eb)
        let extra: String? = onlyB > 0 ? "\(b) has \(onlyB) more events" : onlyA > 0 ? "\(b) ends \(onlyA) events early" : nil
        report.finish(extra: extra)
        if report.summary.divergent > 0 || extra != nil { throw ExitCode(1) }
    }
}
