// babelfish browser phone: the two audio worklets (loaded with audioWorklet.addModule; no build step).
//
// "babelfish-capture": microphone at the context's rate (44.1/48 kHz) -> band-limited resampling to the
//   wire rate (16 kHz) -> 20 ms frames of 16-bit little-endian PCM, posted to the page as ArrayBuffers.
// "babelfish-playback": 20 ms wire frames from the page -> jitter buffer -> resampled to the context rate.
//   Messages in: {type: "frame", pcm}, {type: "clear"}, {type: "mark", payload};
//   out: {type: "cleared"}, {type: "mark", payload} (once the audio before it has played), {type: "stats"}.

const FRAME_MS = 20;

// Streaming windowed-sinc resampler (Hann window, `zeroCrossings` lobes each side, kernel from a table).
// Downsampling lowers the cutoff to the output's Nyquist rate, so the microphone does not alias.
class Resampler {
  constructor(inRate, outRate, zeroCrossings = 8) {
    this.step = inRate / outRate; // input samples per output sample
    const fc = Math.min(1, outRate / inRate) * 0.92; // cutoff, as a fraction of the input Nyquist rate
    this.half = Math.ceil(zeroCrossings / fc); // taps each side, in input samples
    this.res = 32; // table points per input sample
    const n = this.half * this.res;
    this.table = new Float32Array(n + 2);
    for (let i = 0; i <= n; i++) {
      const x = i / this.res;
      const y = Math.PI * x * fc;
      const sinc = y === 0 ? 1 : Math.sin(y) / y;
      this.table[i] = fc * sinc * 0.5 * (1 + Math.cos((Math.PI * x) / this.half));
    }
    this.buf = new Float32Array(8192);
    this.len = this.half; // zeros of history to start with
    this.pos = this.half; // where the next output sample lies, in input samples from buf[0]
    this.out = new Float32Array(1024);
  }

  kernel(d) {
    const x = (d < 0 ? -d : d) * this.res;
    const i = x | 0;
    const f = x - i;
    return this.table[i] + (this.table[i + 1] - this.table[i]) * f;
  }

  // Resample `input` (Float32Array); returns a view on an internal buffer, valid until the next call.
  push(input) {
    if (this.len + input.length > this.buf.length) {
      const bigger = new Float32Array(2 * (this.len + input.length));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
    const most = Math.ceil((this.len - this.pos) / this.step) + 1;
    if (most > this.out.length) this.out = new Float32Array(2 * most);
    const { buf, half, out } = this;
    let n = 0;
    while (Math.floor(this.pos) + half < this.len) {
      const c = Math.floor(this.pos);
      let acc = 0;
      for (let k = c - half + 1; k <= c + half; k++) acc += buf[k] * this.kernel(k - this.pos);
      out[n++] = acc;
      this.pos += this.step;
    }
    const drop = Math.floor(this.pos) - half + 1;
    if (drop > 0) {
      buf.copyWithin(0, drop, this.len);
      this.len -= drop;
      this.pos -= drop;
    }
    return out.subarray(0, n);
  }
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const rate = (options.processorOptions && options.processorOptions.rate) || 16000;
    this.resampler = new Resampler(sampleRate, rate);
    this.frameSamples = (rate * FRAME_MS) / 1000;
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.mono = new Float32Array(128);
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const size = channels[0].length;
    if (this.mono.length < size) this.mono = new Float32Array(size);
    const mono = this.mono.subarray(0, size);
    mono.set(channels[0]);
    for (let c = 1; c < channels.length; c++) for (let i = 0; i < size; i++) mono[i] += channels[c][i];
    const scale = 1 / channels.length;
    const out = this.resampler.push(mono);
    for (let i = 0; i < out.length; i++) {
      const s = Math.max(-1, Math.min(1, out[i] * scale));
      this.frame[this.filled++] = s < 0 ? s * 32768 : s * 32767;
      if (this.filled === this.frameSamples) {
        const buffer = this.frame.buffer;
        this.port.postMessage(buffer, [buffer]);
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
      }
    }
    return true;
  }
}

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.rate = opts.rate || 16000;
    this.frameSamples = (this.rate * FRAME_MS) / 1000;
    this.prebuffer = Math.round((this.rate * (opts.prebufferMs || 60)) / 1000);
    this.maxQueued = this.frameSamples * (opts.maxFrames || 3072); // about a minute, as Vonage buffers
    this.resampler = new Resampler(this.rate, sampleRate);
    this.queue = []; // Float32Array chunks at the wire rate
    this.queued = 0; // samples in queue
    this.head = 0; // read offset into queue[0]
    this.playing = false;
    this.lastArrival = 0;
    this.fifo = new Float32Array(4096); // resampled, at the context rate
    this.fifoLen = 0;
    this.consumed = 0; // wire samples handed to the resampler (i.e. played)
    this.received = 0;
    this.dropped = 0;
    this.underruns = 0;
    this.marks = []; // {at: consumed-sample index, payload}
    this.lastStats = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === "frame") {
      const pcm = new Int16Array(msg.pcm);
      if (this.queued + pcm.length > this.maxQueued) {
        this.dropped += 1;
        return;
      }
      const f = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) f[i] = pcm[i] / 32768;
      this.queue.push(f);
      this.queued += f.length;
      this.received += 1;
      this.lastArrival = currentTime;
    } else if (msg.type === "clear") {
      this.queue = [];
      this.queued = 0;
      this.head = 0;
      this.fifoLen = 0;
      this.playing = false;
      const marks = this.marks;
      this.marks = [];
      for (const m of marks) this.port.postMessage({ type: "mark", payload: m.payload });
      this.port.postMessage({ type: "cleared" });
    } else if (msg.type === "mark") {
      this.marks.push({ at: this.consumed + this.queued, payload: msg.payload });
    }
  }

  take(n) {
    // up to n queued samples, as one Float32Array
    const out = new Float32Array(Math.min(n, this.queued));
    let filled = 0;
    while (filled < out.length) {
      const chunk = this.queue[0];
      const k = Math.min(chunk.length - this.head, out.length - filled);
      out.set(chunk.subarray(this.head, this.head + k), filled);
      filled += k;
      this.head += k;
      if (this.head === chunk.length) {
        this.queue.shift();
        this.head = 0;
      }
    }
    this.queued -= out.length;
    this.consumed += out.length;
    return out;
  }

  process(_inputs, outputs) {
    const channels = outputs[0];
    const size = channels[0].length;
    if (!this.playing && this.queued > 0) {
      // jitter buffer: wait for a little audio, unless the stream has paused (the end of an utterance)
      if (this.queued >= this.prebuffer || currentTime - this.lastArrival > 0.1) this.playing = true;
    }
    while (this.playing && this.fifoLen < size) {
      if (this.queued === 0) {
        this.playing = false;
        this.underruns += 1;
        break;
      }
      const out = this.resampler.push(this.take(this.frameSamples));
      if (this.fifoLen + out.length > this.fifo.length) {
        const bigger = new Float32Array(2 * (this.fifoLen + out.length));
        bigger.set(this.fifo.subarray(0, this.fifoLen));
        this.fifo = bigger;
      }
      this.fifo.set(out, this.fifoLen);
      this.fifoLen += out.length;
    }
    const n = Math.min(size, this.fifoLen);
    const left = channels[0];
    left.set(this.fifo.subarray(0, n));
    left.fill(0, n);
    this.fifo.copyWithin(0, n, this.fifoLen);
    this.fifoLen -= n;
    for (let c = 1; c < channels.length; c++) channels[c].set(left);
    while (this.marks.length && this.marks[0].at <= this.consumed) {
      this.port.postMessage({ type: "mark", payload: this.marks.shift().payload });
    }
    if (currentTime - this.lastStats >= 0.25) {
      this.lastStats = currentTime;
      this.port.postMessage({
        type: "stats",
        played: Math.floor(this.consumed / this.frameSamples),
        received: this.received,
        queued: Math.floor(this.queued / this.frameSamples),
        dropped: this.dropped,
        underruns: this.underruns,
      });
    }
    return true;
  }
}

registerProcessor("babelfish-capture", CaptureProcessor);
registerProcessor("babelfish-playback", PlaybackProcessor);
