// One film on the model families studios run in 2026: each shot names its model, and the
// model's family (templates/families/, see docs/graphs.md) says how it loads, samples and moves.
// Stills on FLUX.1, FLUX.2, Qwen-Image and SDXL; motion on Wan 2.2, LTX-2 and HunyuanVideo 1.5;
// image to video from a picture and from a still made first; first and last frame on Wan 2.2;
// one lip-synced line on Wan 2.2 S2V.
// Without a ComfyUI server it builds as an animatic like every example.

title "Tide Tables"
author "storylang examples"
format 1280x720 @ 24fps
seed 7
style "hand-painted, soft morning light"

character MARA
  look "a lighthouse keeper in her sixties, grey braid, oilskin coat"
  voice "en-us+f3"

EXT. HARBOUR WALL - DAWN
  shot 1 establishing 3s
    model "flux1-dev-fp8.safetensors"
    action "the harbour under a pale sky, boats still on the water"
  shot 2 wide on MARA 3s
    model "flux2_dev_fp8mixed.safetensors"
    action "Mara walks the harbour wall with a lantern"
  shot 3 close on MARA 3s
    model "qwen_image_fp8_e4m3fn.safetensors"
    action "Mara reads a hand-written tide table"
    MARA: High water at six.
  shot 3A close on MARA 3s
    lipsync "wan2.2_s2v_14B_fp8_scaled.safetensors"  // her lips move with the line (Wan 2.2 S2V)
    start "assets/mara_reference.png"
    MARA: And low water at noon.
  shot 4 insert 2s
    model "juggernautXL_v9.safetensors" sdxl
    action "the tide table, ink smudged by rain"

EXT. SEA - MORNING
  shot 5 wide 4s
    model "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"
    camera push in slow
    action "waves roll against the rocks below the lighthouse"
  > dissolve 12f
  shot 6 wide 3s
    model "wan2.2_ti2v_5B_fp16.safetensors"
    camera pan right
    action "gulls lift off the water"
  shot 7 medium on MARA 3s
    model "ltx-2-19b-dev-fp8.safetensors"
    start "assets/morning.png"  // image to video from the writer's own picture
    action "Mara turns towards the sea, wind in her coat"
  shot 8 wide 3s
    model "hunyuanvideo1.5_720p_t2v_fp16.safetensors"
    camera crane up
    action "the lighthouse against the morning sky"
  shot 8A wide 3s
    model "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"
    start still "flux1-dev-fp8.safetensors"  // a FLUX still rendered first, then Wan 2.2 moves it
    camera push in slow
    action "the lamp room window catches the sun"
  shot 9 insert 3s
    model "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"
    keyframes "assets/dawn.png" to "assets/morning.png"
    template keyframes
  shot 10 close on MARA 2s
    model "chroma-unlocked-v50.safetensors"  // a family this project adds: templates/families/chroma.toml
    action "Mara smiles at the sea"
