// A three-shot demo: `storyc build examples/lighthouse.story`
title "The Lighthouse Keeper"
author "storylang examples"
end "The End" 2s
format 1280x720 @ 24fps
style "watercolor illustration, soft rim light, muted palette"
model "dreamshaper_8.safetensors"  sampler dpmpp_2m_sde  scheduler karras  steps 28  cfg 5.5
negative "blurry, text, watermark"
narrator "en-us" rate 165

character MARA
  look "woman in her sixties, silver braid, yellow raincoat"
  seed 1234
  voice "en-us+f3" rate 150 pitch 40

> fade from black 1s

EXT. LIGHTHOUSE CLIFF - NIGHT
  setting "white lighthouse on black rocks, storm, rain"
  lighting "cold moonlight, sweeping lamp beam"

  shot 1 wide 5s
    camera push in slow
    action "the beam sweeps across the waves"
    narrate "Every night for forty years, Mara climbed the stairs."
  > dissolve 0.5s

  shot 2 close on MARA 3s
    camera static
    MARA (quietly): Not tonight.
  > dissolve 0.5s

INT. LAMP ROOM - NIGHT
  setting "brass lamp, fogged glass, rain streaks"

  shot 3 medium on MARA 4s
    camera orbit left slow
    action "she lets the lamp go dark"
    narrate "And the sea, for once, was quiet."

> fade to black 1s
