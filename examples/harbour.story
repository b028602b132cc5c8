// "Last Ferry": twenty-two shots, two characters, dialogue.
title "Last Ferry"
author "storylang examples"
format 1280x720 @ 24fps
style "painterly animation still, cinematic lighting, rich color"
model "dreamshaper_8.safetensors"  sampler dpmpp_2m  scheduler karras  steps 24  cfg 6
negative "blurry, extra fingers, text, watermark"
narrator "en-gb" rate 160
duration 4s

character IDA
  look "young ferry captain, short red hair, navy peacoat, brass whistle"
  seed 2024
  voice "en-us+f2" rate 165 pitch 55

character TOMAS
  look "old fisherman, white beard, green wool sweater, weathered hands"
  seed 77
  voice "en-gb+m3" rate 140 pitch 30

> fade from black 1s

EXT. HARBOUR - DUSK
  setting "small stone harbour, fishing boats, gulls, orange sky"
  lighting "low golden sun, long shadows"

  shot 1 extreme wide 5s
    camera pan right slow
    action "the harbour settles for the night"
    narrate "The last ferry left at seven. It always had."
  > dissolve 0.5s

  shot 2 wide on IDA 4s
    camera push in slow
    action "Ida coils a rope on the ferry's deck"

  shot 3 medium on TOMAS 4s
    camera truck left slow
    action "Tomas limps along the quay with a bucket"
    TOMAS: Room for one more?

  shot 4 close on IDA 3s
    camera static
    IDA: Always, Tomas.

  shot 5 medium on IDA and TOMAS 4s
    camera pan left slow
    action "Tomas steps aboard, Ida steadies him"
    TOMAS: My knees are older than this boat.
  > dissolve 0.5s

EXT. FERRY DECK - DUSK
  setting "small wooden ferry, open water, lamp posts"
  lighting "fading light, first lamps lit"

  shot 6 wide 4s
    camera crane up slow
    action "the ferry pulls away from the harbour wall"
    narrate "Nobody remembered who built the ferry."

  shot 7 over the shoulder on IDA 4s
    camera static
    action "Ida watches the horizon at the wheel"
    IDA: Fog's coming in early.

  shot 8 close on TOMAS 4s
    camera push in slow
    TOMAS (smiling): It always does, when you're scared.

  shot 9 extreme close on IDA 3s
    camera static
    action "her hand tightens on the brass whistle"

  shot 10 medium on IDA and TOMAS 5s
    camera orbit right slow
    IDA: I'm not scared.
    TOMAS: Of course not.
  > dissolve 0.5s

EXT. OPEN SEA - NIGHT
  setting "thick sea fog, black water, a single lantern"
  lighting "blue night, lantern glow"

  shot 11 extreme wide 5s
    camera pull out slow
    action "the ferry is a small light swallowed by fog"
    narrate "Out past the point, the fog closed like a door."

  shot 12 medium on IDA 4s
    camera shake slow
    action "the deck lurches, Ida grips the wheel"
    IDA: Hold on to something!

  shot 13 close on TOMAS 3s
    camera static
    TOMAS: There. Listen.

  shot 14 wide 4s
    camera tilt up slow
    action "a faint bell rings somewhere in the fog"

  shot 15 close on IDA 3s
    camera push in fast
    IDA: That's the old buoy.

  shot 16 medium on TOMAS 4s
    camera pan right slow
    TOMAS: Then we're home.
  > dissolve 0.5s

EXT. HARBOUR - NIGHT
  setting "stone harbour at night, lamps, wet cobbles"
  lighting "warm lamp light through fog"

  shot 17 wide 4s
    camera pedestal down slow
    action "the ferry glides back into the harbour"

  shot 18 medium on IDA and TOMAS 4s
    camera static
    action "Tomas steps onto the quay"
    TOMAS: Same time tomorrow, captain.

  shot 19 close on IDA 3s
    camera push in slow
    IDA: Same time tomorrow.

  shot 20 wide on TOMAS 4s
    camera truck right slow
    action "Tomas walks away into the lamplight"
  > dissolve 0.5s

INT. FERRY CABIN - NIGHT
  setting "tiny cabin, logbook, oil lamp"
  lighting "single oil lamp, deep shadows"

  shot 21 insert 3s
    camera push in slow
    action "a pen writes one word in the logbook: home"

  shot 22 medium on IDA 5s
    camera pull out slow
    action "Ida turns down the lamp"
    narrate "The last ferry left at seven. It always would."

> fade to black 1.5s
