// Every construct of the language, in one small film. See docs/language.md.
include "bible.story"

title "The Inspection"
author "storylang examples"
format 1280x720 @ 24fps
model "dreamshaper_8.safetensors"  vae "vae-ft-mse-840000-ema-pruned.safetensors"
sampler dpmpp_2m_sde  scheduler karras  steps 28  cfg 5.5  denoise 1.0  clip skip 2
seed 42
lora "storybook_style.safetensors" 0.5
narrator "en-us" rate 160 pitch 50
template still
duration 4s
overrun extend
upscale "4x-UltraSharp.pth" 2x
motion "mm_sd_v15_v2.ckpt"
controlnet "control_v11p_sd15_canny.pth" canny
music "assets/sea_theme.ogg" volume -14dB fade in 2s fade out 3s duck -12dB
note "the film-wide music starts with the first scene"

> fade from black 1s

EXT. LIGHTHOUSE CLIFF - DAWN
  setting "white lighthouse on black rocks, calm sea"
  lighting "first light, pink clouds"
  mood "hopeful"
  camera push in slow

  // the first shot keeps the scene's camera
  shot 1 establishing 5s
    action "the lighthouse stands against the dawn"
    narrate """The inspector came once a year,
               always on the first calm morning."""
    at 2.5s "a seagull lands on the railing"
  > dissolve 0.5s

  shot 2 wide low angle on OLD TOM 4s
    camera crane down slow and pan right slow
    action "Old Tom climbs the cliff path with a clipboard"
    template hires
    steps 30  cfg 6  seed 7

  shot 2A close on MARA 3s
    camera push in fast 40% ease-out
    MARA (to herself): Right on time.
  > wipe left 0.5s

  shot 3 over the shoulder on MARA and OLD TOM 5s
    camera orbit right 20deg linear
    OLD TOM: Everything in order, Mara?
    MARA: Everything but the weather.
  > fade through black 1s

INT. LAMP ROOM - DAY
  setting "brass lamp, fogged glass"
  lighting "soft window light"
  music off

  shot 4 medium on MARA 4s
    camera roll left 8deg
    action "she polishes the great lens"
    template motion

  shot 5 insert 72f
    camera zoom in 1.5x
    keyframes "assets/dawn.png" to "assets/morning.png"
    template keyframes
    model "wan2.1_flf2v_720p_14B_fp16.safetensors"  // keyframes runs Wan 2.1 first-last-frame
  > crossfade 12f

  shot 6 wide 3s
    camera handheld fast
    source "assets/harbour_footage.mp4" from 1s to 4s
    template restyle
    denoise 0.6
    negative "people"

  shot 7 point of view 500ms
    camera tilt up fast

  shot 8 "the verdict" medium wide on OLD TOM 4s
    camera truck left and pedestal up
    OLD TOM (signing): Passed. Again.

> fade to black 1s
