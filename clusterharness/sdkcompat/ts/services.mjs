// Services written with Restate's TypeScript SDK, unchanged, for the compatibility test in
// ../sdkcompat_test.go. It listens on 127.0.0.1:$PORT and prints "AWAKEABLE <id>" when a
// handler creates an awakeable.
import * as http2 from "node:http2";
import * as restate from "@restatedev/restate-sdk";

const counter = restate.object({
  name: "TsCounter",
  handlers: {
    add: async (ctx, delta) => {
      const v = ((await ctx.get("v")) ?? 0) + delta;
      ctx.set("v", v);
      return v;
    },
    get: restate.handlers.object.shared(async (ctx) => (await ctx.get("v")) ?? 0),
  },
});

const greeter = restate.service({
  name: "TsGreeter",
  handlers: {
    // A side effect, a durable timer and a call to a virtual object.
    greet: async (ctx, name) => {
      const id = await ctx.run("id", () => "x-" + name);
      await ctx.sleep(100);
      const n = await ctx.objectClient(counter, name).add(1);
      return `Hello ${name} (${id}) #${n}`;
    },
    fail: async () => {
      throw new restate.TerminalError("nope", { errorCode: 409 });
    },
    // A one-way call with a delay.
    later: async (ctx, name) => {
      ctx.objectSendClient(counter, name).add(10, restate.rpc.sendOpts({ delay: 200 }));
      return "sent";
    },
    awake: async (ctx) => {
      const { id, promise } = ctx.awakeable();
      await ctx.run("publish", () => {
        console.log("AWAKEABLE " + id);
      });
      return await promise;
    },
  },
});

const signup = restate.workflow({
  name: "TsSignup",
  handlers: {
    run: async (ctx, email) => {
      const code = await ctx.promise("code");
      ctx.set("status", "confirmed");
      return `${email}:${code}`;
    },
    confirm: async (ctx, code) => {
      await ctx.promise("code").resolve(code);
      return "ok";
    },
  },
});

// On loopback only (the SDK's own listen binds every interface).
const handler = restate.endpoint().bind(greeter).bind(counter).bind(signup).http2Handler();
http2.createServer(handler).listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log("LISTENING " + process.env.PORT);
});
