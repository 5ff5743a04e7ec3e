import Foundation
import Testing

@Suite("vfiotrace record", .serialized)
struct RecordCLITests {
    @Test("records VFIO opens of a program and its children (forks followed), passes the exit status through")
    func opensAndExitStatus() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/t.vft"
        // No VFIO on the test machine: the opens fail, and are recorded.
        let r = try CLI.run(["record", "-o", t, "--", "sh", "-c", "cat /dev/vfio/vfio; (cat /dev/vfio/42); cat /etc/hostname; exit 3"])
        #expect(r.code == 3, "\(r.err)")
        #expect(r.err.contains("recorded 2 events"), "\(r.err)")
        let cat = try CLI.run(["cat", t])
        #expect(cat.out.contains("!mode ptrace"))
        #expect(cat.out.contains("open /dev/vfio/vfio -> ENOENT") && cat.out.contains("open /dev/vfio/42 -> ENOENT"), "\(cat.out)")
        #expect(!cat.out.contains("hostname"))
        #expect(try CLI.run(["verify", t]).code == 0)
    }

    @Test("a program that cannot be run is reported; no command is a usage error")
    func errors() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = try CLI.run(["record", "-o", dir + "/m.vft", "--", "/nonexistent/program"])
        #expect(missing.code == 127 && missing.err.contains("/nonexistent/program: no such file; nothing recorded"), "\(missing.code) \(missing.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.vft"), "an empty trace was left")
        let notOnPath = try CLI.run(["record", "-o", dir + "/m.vft", "--", "no-such-program-anywhere"])
        #expect(notOnPath.code == 127 && notOnPath.err.contains("command not found on PATH"), "\(notOnPath.err)")
        try "plain text\n".write(toFile: dir + "/not-a-program", atomically: true, encoding: .utf8)
        let notExecutable = try CLI.run(["record", "-o", dir + "/m.vft", "--", dir + "/not-a-program"])
        #expect(notExecutable.code == 126 && notExecutable.err.contains("not an executable file"), "\(notExecutable.err)")
        let none = try CLI.run(["record", "-o", dir + "/n.vft"])
        #expect(none.code == 2 && none.err.contains("nothing to run"))
    }

    @Test("a recorder killed with SIGKILL leaves a trace whose closed frames are readable")
    func killedRecorder() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/k.vft"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["record", "-o", t, "--", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do cat /dev/vfio/vfio 2>/dev/null; done; sleep 4"]
        try p.run()
        // The opens happen at once; the writer closes a frame within 250 ms.
        usleep(1_500_000)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let cat = try CLI.run(["cat", t])
        #expect(cat.out.components(separatedBy: "open /dev/vfio/vfio -> ENOENT").count - 1 == 8, "\(cat.out)\(cat.err)")
        let verify = try CLI.run(["verify", t])
        #expect(verify.code == 1, "no index after SIGKILL: \(verify.out)")
        #expect(try CLI.run(["recover", t, "-o", dir + "/saved.vft"]).code == 0)
    }

    /// Runs the recorder on `script` (sh) and kills it with SIGKILL after
    /// `killAfter` µs; returns once `doneFile` appears (the program, now
    /// the recorder's orphan, ran to its end) or after 15 s.
    func recordAndKill(_ script: String, trace: String, doneFile: String, startedFile: String? = nil, killAfter: UInt32) throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["record", "-o", trace, "--", "sh", "-c", script]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        usleep(killAfter)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        for i in 0..<1500 {
            if FileManager.default.fileExists(atPath: doneFile) { return true }
            // A program that has not started a second after the kill never will.
            if i == 100, let startedFile, !FileManager.default.fileExists(atPath: startedFile) { return false }
            usleep(10_000)
        }
        return false
    }

    @Test("a recorder killed with SIGKILL changes nothing for the program: its opens, closes and pipes work on")
    func killedRecorderLeavesProgramWhole() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The opens and closes after the kill are the ones that used to fail
        // with ENOSYS; a pipe's reader sees its end only if the shell's
        // closes of the write end work.
        let script = """
            sleep 0.5
            for i in 1 2 3 4 5 6 7 8 9 10; do cat /etc/hostname > \(dir)/out.$i; done
            echo piped | cat > \(dir)/pipe.out
            cat /dev/vfio/vfio 2> \(dir)/vfio.err
            echo ok > \(dir)/done
            """
        let done = try recordAndKill(script, trace: dir + "/k.vft", doneFile: dir + "/done", killAfter: 200_000)
        #expect(done, "the program did not finish after its recorder was killed")
        let hostname = try String(contentsOfFile: "/etc/hostname", encoding: .utf8)
        for i in 1...10 {
            #expect((try? String(contentsOfFile: dir + "/out.\(i)", encoding: .utf8)) == hostname, "out.\(i)")
        }
        #expect((try? String(contentsOfFile: dir + "/pipe.out", encoding: .utf8)) == "piped\n")
        let err = (try? String(contentsOfFile: dir + "/vfio.err", encoding: .utf8)) ?? ""
        #expect(err.contains("No such file") && !err.contains("not implemented"), "\(err)")
    }

    @Test("the recorder killed at 100 random moments: every trace recovers, at most its last frame lost, the program runs to its end")
    func killedAtRandomMoments() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SystemRandomNumberGenerator()
        var unfinished: [String] = []
        var unreadable: [String] = []
        var ran = 0
        for run in 0..<100 {
            let trace = dir + "/r\(run).vft", done = dir + "/done\(run)"
            let started = dir + "/started\(run)"
            let script = ": > \(started); for i in 1 2 3 4 5 6 7 8 9 10 11 12; do cat /dev/vfio/vfio 2>/dev/null; cat /dev/vfio/7 2>/dev/null; : > \(dir)/f\(run); done; echo ok > \(done)"
            let delay = UInt32.random(in: 0..<120_000, using: &rng)
            let finished = try recordAndKill(script, trace: trace, doneFile: done, startedFile: started, killAfter: delay)
            // Killed before it let the program start: the program never ran
            // (it exits 127 when the recorder that was to seize it is gone).
            guard FileManager.default.fileExists(atPath: started) else { continue }
            ran += 1
            guard finished else {
                unfinished.append("run \(run) (killed after \(delay / 1000) ms)")
                continue
            }
            // Killed before the header was written: no trace at all is fine.
            let size = (try? FileManager.default.attributesOfItem(atPath: trace)[.size] as? Int) ?? 0
            guard size > 0 else { continue }
            let v = try CLI.run(["verify", trace])
            let problems = v.out.split(separator: "\n").filter { !$0.contains("seek index") && !$0.contains("intact") && !$0.contains("readable in") }
            // At most one problem, the cut-off last frame (a truncation).
            if problems.count > 1 || problems.contains(where: { !$0.contains("incomplete") && !$0.contains("cut") && !$0.contains("stray") }) {
                unreadable.append("run \(run) after \(delay / 1000) ms: \(v.out)")
            }
            let r = try CLI.run(["recover", trace, "-o", dir + "/s\(run).vft"])
            if r.code != 0 { unreadable.append("run \(run): recover exit \(r.code): \(r.err)") }
        }
        #expect(unfinished.isEmpty, "\(unfinished)")
        #expect(unreadable.isEmpty, "\(unreadable)")
        // Most kills land while the program runs (the recorder starts in
        // well under the 120 ms the delays span).
        #expect(ran >= 50, "only \(ran) of 100 runs got to start the program")
    }

    /// Only the dispositions are compared: the mask a child gets from
    /// Foundation's Process depends on the spawning thread, so two spawns
    /// from a test process need not agree (the recorder passes its own on).
    @Test("the program gets the signal dispositions it would have had without the recorder")
    func signalsRestored() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let show = "grep -E '^SigIgn' /proc/$$/status"
        let direct = Process()
        direct.executableURL = URL(fileURLWithPath: "/bin/sh")
        direct.arguments = ["-c", show + " > \(dir)/direct"]
        try direct.run()
        direct.waitUntilExit()
        let r = try CLI.run(["record", "-o", dir + "/s.vft", "--", "sh", "-c", show + " > \(dir)/recorded"])
        #expect(r.code == 0, "\(r.err)")
        let a = try String(contentsOfFile: dir + "/direct", encoding: .utf8)
        let b = try String(contentsOfFile: dir + "/recorded", encoding: .utf8)
        #expect(a.contains("SigIgn") && a == b, "direct:\n\(a)recorded:\n\(b)")
    }

    @Test("a trace that cannot be written (file size limit) stops recording, not the program")
    func writeFailure() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/f.vft"
        // 2 KiB allowed; a few thousand recorded opens in frames closed every 250 ms exceed it.
        let inner = "i=0; while [ $i -lt 400 ]; do cat /dev/vfio/vfio 2>/dev/null; i=$((i+1)); done; touch \(dir)/done; exit 5"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "ulimit -f 2; exec \"$0\" record -o \(t) -- sh -c '\(inner)'", CLI.binary]
        let e = Pipe()
        p.standardError = e
        try p.run()
        let err = String(decoding: e.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 2, "\(err)")
        #expect(err.contains(t) && err.contains("writing the trace failed") && err.contains("exited 5"), "\(err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/done"), "the program must run to its end")
        // What was written before the limit is kept.
        let rec = try CLI.run(["recover", t, "-o", dir + "/kept.vft"])
        #expect(rec.code == 0, "\(rec.err)")
        #expect(try CLI.run(["cat", dir + "/kept.vft"]).out.contains("open /dev/vfio/vfio -> ENOENT"))
    }
}

@Suite("vfiotrace record --pid", .serialized)
struct RecordAttachTests {
    @Test("attaches to a running process, follows its children, and on SIGINT detaches leaving it running")
    func attachAndDetach() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = Process()
        target.executableURL = URL(fileURLWithPath: "/bin/sh")
        target.arguments = ["-c", "while true; do cat /dev/vfio/vfio 2>/dev/null; sleep 0.1; done"]
        try target.run()
        defer { target.terminate() }
        let t = dir + "/a.vft"
        let rec = Process()
        rec.executableURL = URL(fileURLWithPath: CLI.binary)
        rec.arguments = ["record", "-o", t, "--pid", String(target.processIdentifier)]
        let err = Pipe()
        rec.standardError = err
        try rec.run()
        usleep(1_200_000)
        kill(rec.processIdentifier, SIGINT)
        rec.waitUntilExit()
        #expect(rec.terminationStatus == 0)
        #expect(target.isRunning, "the traced process must survive the detach")
        let cat = try CLI.run(["cat", t])
        let opens = cat.out.components(separatedBy: "open /dev/vfio/vfio -> ENOENT").count - 1
        #expect(opens >= 3, "\(cat.out)")
        #expect(try CLI.run(["verify", t]).code == 0)
        let missing = try CLI.run(["record", "-o", dir + "/x.vft", "--pid", "999999"])
        #expect(missing.code == 2 && missing.err.contains("999999"))
    }
}

@Suite("vfiotrace record --pins")
struct RecordPinsTests {
    /// This host has no VFIO driver loaded (or no tracefs), so --pins must
    /// refuse before it runs anything: exit 2, the reason, no trace. The
    /// lane where --pins really records is scripts/lab-lane (6.1, 6.12).
    @Test("refuses with the reason, before running the program, where the kernel cannot trace pins",
          .enabled(if: access("/sys/module/vfio", F_OK) != 0 || access("/sys/kernel/tracing/kprobe_events", F_OK) != 0,
                   "this host could really trace pins: the VM lab lane covers that"))
    func refusesWithoutVFIO() throws {
        let dir = CLI.tempDir()
        let r = try CLI.run(["record", "--pins", "-o", dir + "/p.vft", "--", "/bin/sh", "-c", "touch \(dir)/ran"])
        #expect(r.code == 2)
        #expect(r.err.contains("--pins"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ran"), "the program must not run unrecorded")
        #expect(!FileManager.default.fileExists(atPath: dir + "/p.vft"))
    }
}

@Suite("vfiotrace record: threads that exec", .serialized)
struct RecordExecTests {
    /// Built with the package (Tests/Fixtures/ThreadExec).
    static let fixture = (CLI.binary as NSString).deletingLastPathComponent + "/thread-exec-fixture"

    /// When a thread other than the leader execs, it takes over the
    /// leader's pid and its own id vanishes without an exit report; the
    /// execve's end is reported under the leader's pid. An attached
    /// recorder that keeps the leader's old syscall state takes that end
    /// for an entry and from then on reads every call backwards (it
    /// recorded cat's open as ENOSYS).
    @Test("a non-leader thread's exec: followed, recorded right, and the recording ends")
    func threadExec() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/e.vft"
        for attach in [false, true] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            var target: Process? = nil
            if attach {
                let tp = Process()
                tp.executableURL = URL(fileURLWithPath: Self.fixture)
                tp.arguments = ["1000", "/bin/cat", "/dev/vfio/vfio"]
                tp.standardError = FileHandle.nullDevice
                try tp.run()
                target = tp
                p.arguments = ["record", "-o", t, "--pid", String(tp.processIdentifier)]
            } else {
                p.arguments = ["record", "-o", t, "--", Self.fixture, "0", "/bin/cat", "/dev/vfio/vfio"]
            }
            p.standardError = FileHandle.nullDevice
            try p.run()
            var waited = 0
            while p.isRunning && waited < 200 { usleep(100_000); waited += 1 }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            if let target, target.isRunning { target.terminate() }
            #expect(waited < 200, "the recorder must end when the program does (attach: \(attach))")
            if !attach { #expect(p.terminationStatus == 1, "cat's exit status") }
            let cat = try CLI.run(["cat", t, "--no-header"])
            #expect(cat.out.hasSuffix("open /dev/vfio/vfio -> ENOENT\n"), "attach: \(attach): \(cat.out)")
        }
    }
}
