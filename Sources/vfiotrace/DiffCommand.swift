import ArgumentParser
import Replay
import Report
import Trace

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare the outcomes of two traces event by event.",
        discussion: Help.flow("""
        For the same workload recorded on two kernels, or a recording against a replay's
        --output. Events are paired by position; where the calls themselves differ the
        workloads have drifted apart and that is reported. Outcome fields the first trace
        does not state are not compared. The migration capability's bytes 12..15 are
        compared only when both kernels zero them (6.6+). Both inputs are streamed: memory
        does not grow with their length.

        Examples:
          vfiotrace diff recorded-6.1.vft recorded-6.12.vft
          vfiotrace replay host.vft --profile 5.8 -o r.vft
          vfiotrace diff host.vft r.vft

        Exit codes: 0 same, 1 divergent, 2 trouble.
        """)
    )

    @Argument(help: "The expected trace or scenario.", completion: .file(extensions: ["vft", "vfs"]))
    var a: String

    @Argument(help: "The trace or scenario compared with it.", completion: .file(extensions: ["vft", "vfs"]))
    var b: String

    @OptionGroup var comparison: ComparisonArguments

    @OptionGroup var html: HTMLReportOptions

    @OptionGroup var progressOptions: ProgressOptions

    func run() throws {
        let ia = try openInput(a)
        let ib = try openInput(b)
        var report = DivergenceReport(maxShown: comparison.maxDivergences, fd: html.onStandardOutput ? 2 : 1)
        var page = html.path.map { _ in comparison.page("vfiotrace diff \(a) \(b)", facts: [("expected", a), ("actual", b)]) }
        let d: TraceDiff
        var progress = progressOptions.meter("diff", total: ia.indexedEventCount)
        var compared: UInt64 = 0
        do {
            d = try TraceDiff.compare(ia, ib, options: comparison.options) { step, kind in
                compared += 1
                report.show(step, kind, clearing: progress)
                page?.add(step, kind)
                progress.update(compared)
            }
        } catch {
            progress.finish()
            throw Failure.trouble("\(error)")
        }
        progress.finish()
        let extra: String? = d.onlyInSecond > 0 ? "\(b) has \(d.onlyInSecond) more events"
            : d.onlyInFirst > 0 ? "\(b) ends \(d.onlyInFirst) events early" : nil
        report.finish(d.summary, extra: extra)
        if var page {
            page.summary = [d.summary.line(extra: extra)]
            try html.write(page, inputs: [a, b])
        }
        if d.summary.divergent > 0 || extra != nil { throw ExitCode(1) }
    }
}
