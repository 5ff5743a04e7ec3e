import ArgumentParser
import Replay
import Trace
#if canImport(Glibc)
import Glibc
#endif

enum ReplayDefaults: BackendDefaults {
    static let backend = BackendKind.engine
    static let profile = "auto"
    static let profileKeywords: Set<String> = ["auto"]
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a trace or scenario against a backend and compare every outcome.",
        discussion: Help.flow("""
        Each event's inputs go to the backend; its outcome (result or errno, written-back
        fields, the bitmap buffer bit for bit) is compared with the recorded one. Only the
        outcome fields a scenario states are compared. Bitmap differences are printed as
        page runs with their IOVAs, split into bits inside mappings and bits outside any
        mapping (holes, past the range end).

        Backends: `engine` (the bitmap engine, a model of vfio_iommu_type1.c; profiles
        from `vfiotrace profiles`, or `auto`, which picks one from the trace header's
        kernel release, latest when there is none) and `kernel` (this machine's VFIO,
        through /dev/vfio: needs root, a device bound to vfio-pci, and --group or
        --device naming it; nothing else is opened). With --output, a kernel replay
        records the real outcomes with this kernel's release in the header.

        The engine's host (what depends on the IOMMU hardware, not on type1: the
        domain's page sizes and IOVA ranges, DMA_CC) is taken from the trace's own
        answers where it gives them (GET_INFO and CHECK_EXTENSION while an IOMMU-backed
        group is attached; the report names each trait), else the lab's defaults
        (QEMU's emulated VT-d); --default-host ignores the trace's, and --host FILE
        gives a host description instead (`vfiotrace host` prints one).

        Examples:
          vfiotrace replay corpora/basic-tracking.vfs
          vfiotrace replay host.vft --profile 5.10
          vfiotrace replay host.vft --profile v16 -o v16.vft
          vfiotrace diff host.vft v16.vft
          vfiotrace replay corpora/basic-tracking.vfs --backend kernel \\
            --device 0000:00:03.0 -o real.vft

        Exit codes: 0 every outcome matches, 1 divergence, 2 trouble, including events with
        stated outcomes that this backend could not perform (a trace group with no real group
        to bind, pins without a pinning device): such a replay is neither a match nor a
        finding. Ioctls vfiotrace does not decode are skipped and counted, not compared.
        """)
    )

    @Argument(help: "The trace (.vft) or scenario (.vfs) to replay.", completion: .file(extensions: ["vft", "vfs"]))
    var trace: String

    @OptionGroup var backend: BackendOptions<ReplayDefaults>

    @Option(name: .shortAndLong, help: "Write the replayed events (with the backend's outcomes) as a trace (`-`: standard output; the report then goes to standard error).")
    var output: String?

    @OptionGroup var comparison: ComparisonArguments

    @OptionGroup var host: TraceHostOptions

    @OptionGroup var html: HTMLReportOptions

    @OptionGroup var progressOptions: ProgressOptions

    func validate() throws {
        if output == "-" && html.onStandardOutput { throw ValidationError("-o - and --html - cannot both have standard output") }
    }

    func run() throws {
        let input = try openInput(trace)
        // Written beside the target, in place only when complete.
        let out = try output.map { try beginOutput($0, inputs: [trace]) }
        do { try replay(input, into: out) } catch {
            out?.abandon()
            throw error
        }
    }

    func replay(_ input: EventInput, into out: OutputFile?) throws {
        let backendObject: Backend
        let why: String
        var header = input.header
        if backend.kind == .kernel {
            let kinds: [UInt32: GroupKind]
            do { kinds = try RealVFIOBackend.traceGroupKinds(of: input) } catch { throw Failure.trouble("\(error)") }
            let real = try backend.realBackend(traceKinds: kinds)
            backendObject = real
            why = "real kernel \(real.kernelRelease)"
            header.kernelRelease = real.kernelRelease
            header.host = Posix.uname().node
        } else {
            let (chosen, reason) = backend.choice.resolve(for: input.header)
            let (model, whence) = try hostStated(by: input, options: host)
            backendObject = BitmapEngine(profile: chosen, host: model)
            why = reason + (whence.isEmpty ? "" : "; " + whence)
        }
        var replayer = Replayer(backend: backendObject, options: comparison.options)
        // With `-o -` the trace is standard output: the report goes to stderr.
        var report = DivergenceReport(maxShown: comparison.maxDivergences,
                                      fd: out?.isStandardOutput == true || html.onStandardOutput ? 2 : 1)
        var summary = ReplaySummary(options: comparison.options)
        var page = html.path.map { _ in comparison.page("vfiotrace replay \(trace)", facts: [("trace", trace), ("backend", backendObject.name), ("chosen because", why)]) }
        report.out.line("replaying \(trace) on \(backendObject.name) (\(why))")
        report.out.flush()
        var writer: TraceWriter? = nil
        if let out {
            var h = header
            h.tool = toolVersion
            h.captureMode = "replay:\(backendObject.name)"
            do { writer = try TraceWriter(output: out, header: h) } catch { throw Failure.trouble("\(out.name): \(error)") }
        }
        var progress = progressOptions.meter("replay", total: input.indexedEventCount)
        defer { progress.finish() }
        var events = try inputEvents(input)
        var done: UInt64 = 0
        while let e = try nextEvent(&events) {
            let step = replayer.step(e)
            let kind = summary.add(step)
            report.show(step, kind, clearing: progress)
            page?.add(step, kind)
            done += 1
            progress.update(done)
            if let w = writer, let out {
                do { try w.append(step.actual) } catch { throw Failure.trouble("\(out.name): \(error)") }
            }
        }
        progress.finish()
        try checkProblems(events)
        if let w = writer, let out {
            do { try w.close() } catch { throw Failure.trouble("\(out.name): \(error)") }
            try commitOutput(out)
        }
        report.finish(summary)
        backendObject.close()
        if var page {
            page.summary = [summary.line()]
            try html.write(page, inputs: [trace])
        }
        // Outcomes the trace states but this backend could not produce make
        // the comparison invalid (later divergences may only follow from
        // them): trouble, not a finding and not a match.
        if let why = summary.firstUnreplayable {
            throw Failure.trouble("some stated outcomes could not be checked on \(backendObject.name): \(why)")
        }
        if summary.divergent > 0 { throw ExitCode(1) }
    }
}

/// Prints divergences as they are found (the first `maxShown`) and the
/// summary at the end; the counting is ReplaySummary's.
struct DivergenceReport {
    let maxShown: Int
    var out: OutputBuffer
    /// Divergent steps met so far, shown or not.
    private var met = 0

    init(maxShown: Int, fd: Int32 = 1) {
        self.maxShown = maxShown
        out = OutputBuffer(fd: fd)
    }

    /// Prints `step` if it is one of the first `maxShown` divergences,
    /// clearing `progress`'s line first so that the two never mix.
    mutating func show(_ step: ReplayStep, _ kind: ReplaySummary.Kind, clearing progress: Progress? = nil) {
        guard kind == .divergent || kind == .outsideMappingsOnly else { return }
        met += 1
        guard met <= maxShown else { return }
        progress?.finish()
        out.line(step.expected.inputLine + (kind == .divergent ? "" : "   [outside mappings only: not counted]"))
        for l in step.differenceLines(indent: "    ") { out.line(l) }
        out.flush()
    }

    mutating func finish(_ summary: ReplaySummary, extra: String? = nil) {
        out.line(summary.line(extra: extra, shown: maxShown))
        out.flush()
    }
}

/// Ends the process on SIGINT/SIGTERM: the kernel then closes every fd and
/// drops every mapping a real replay made.
func installExitOnSignal() {
    signal(SIGINT) { _ in _exit(130) }
    signal(SIGTERM) { _ in _exit(143) }
}
