import ArgumentParser
import Conform
import Replay
import Report
import Trace
#if canImport(Glibc)
import Glibc
#endif

struct BisectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bisect",
        abstract: "Find where a trace's outcomes change along an ordered list of profiles or kernels.",
        discussion: Help.flow("""
        The trace (or scenario) is replayed on each profile (the engine) or each kernel (the
        VM lab, real VFIO), in the order given; every point where the outcomes change from
        one to the next is printed with the first differing event, the first change marked.
        Outcomes are compared with each other, not with what the trace recorded.

        Examples:
          vfiotrace bisect corpora/pinned-scope.vfs
          vfiotrace bisect host.vft --profiles v16,5.8,5.10,5.12,latest
          vfiotrace bisect corpora/lab-probes.vfs --kernels 6.1,6.12

        Exit codes: 0 no change along the list, 1 outcomes change, 2 trouble.
        """)
    )

    @Argument(help: "The trace (.vft) or scenario (.vfs).", completion: .file(extensions: ["vft", "vfs"]))
    var trace: String

    @Option(help: ArgumentHelp("Engine profiles in order, comma-separated (default: every preset, oldest first; `vfiotrace profiles` lists them).",
                               valueName: "profile,…"))
    var profiles: String?

    @Option(help: "Real kernels in order (5.10, 6.1, 6.12, or bzImage paths), replayed in the VM lab.")
    var kernels: String?

    @Option(help: ArgumentHelp("With --kernels: keep each kernel's recording in DIR/<kernel>/<release>/bisect.vft (default: a directory under /tmp).",
                               valueName: "dir"), completion: .directory)
    var labOut: String?

    @OptionGroup var host: TraceHostOptions

    @OptionGroup var comparison: ComparisonArguments

    @OptionGroup var html: HTMLReportOptions

    func validate() throws {
        if profiles != nil && kernels != nil { throw ValidationError("give --profiles or --kernels, not both") }
        if labOut != nil && kernels == nil { throw ValidationError("--lab-out is for --kernels") }
        _ = try profileList()
    }

    func profileList() throws -> [KernelProfile] {
        guard let profiles else { return KernelProfile.presets }
        return try profiles.split(separator: ",").map { try Named<KernelProfile>(String($0)).checked() }
    }

    func run() throws {
        let events = try readAllEvents(trace)
        var points: [Bisection.Point] = []
        if let kernels {
            guard let root = RepositoryLocation.labRoot() else {
                throw Failure.trouble("--kernels needs scripts/vm-lab (run from the vfiotrace checkout)")
            }
            // Without --lab-out the guests' files go to a private directory
            // of this run (mkdtemp), removed when it ends.
            let scratch = labOut == nil ? Posix.makeTemporaryDirectory(prefix: "/tmp/vfiotrace-bisect-") : nil
            if labOut == nil && scratch == nil { throw Failure.trouble("bisect: cannot create a temporary directory under /tmp") }
            defer { if let scratch { Posix.removeTree(scratch) } }
            let lab = LabReplay(root: root, outputDirectory: labOut.map(Posix.absolutePath) ?? scratch!)
            for k in kernels.split(separator: ",").map(String.init) {
                do { points.append(Bisection.Point(name: k, outcomes: try lab.outcomes(of: trace, on: k))) } catch {
                    throw Failure.trouble("\(error)")
                }
            }
        } else {
            let (model, _) = try host.host(for: events)
            points = try profileList().map { Bisection.enginePoint(events, profile: $0, host: model) }
        }
        var out = OutputBuffer(fd: html.onStandardOutput ? 2 : 1)
        var changes = 0
        var first: String? = nil
        let comparisons = Bisection.compare(points, options: comparison.options)
        for c in comparisons {
            guard let step = c.firstChange else {
                out.line("same  \(c.from) -> \(c.to)")
                continue
            }
            changes += 1
            if first == nil { first = c.to }
            out.line("\(changes == 1 ? "FIRST CHANGE" : "change") \(c.from) -> \(c.to) at event #\(step.expected.seq) (expected: \(c.from), got: \(c.to)):")
            for l in step.reportLines(indent: "    ") { out.line(l) }
        }
        let names = points.map(\.name).joined(separator: ", ")
        let verdict = changes == 0 ? "no change across \(names)"
            : "\(changes) change point\(changes == 1 ? "" : "s") across \(names); the first is \(first!)"
        out.line(verdict)
        out.flush()
        if html.path != nil {
            let along = kernels.map { "kernels \($0)" } ?? "profiles \(points.map(\.name).joined(separator: ","))"
            var page = comparison.page("vfiotrace bisect \(trace)", facts: [("trace", trace), ("along", along)])
            page.addChangePoints(comparisons)
            page.summary = [verdict]
            try html.write(page, inputs: [trace])
        }
        if changes > 0 { throw ExitCode(1) }
    }
}
